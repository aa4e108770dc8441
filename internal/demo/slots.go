package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"carefront/internal/appointments"
	"carefront/internal/clinical/store"
	"carefront/internal/fhir"
)

// Bookable time of the demo clinic: two clinicians, each in the clinic and
// by video, on weekdays, in 30-minute Slots, in the clinic's time zone.
var schedules = []struct {
	id, practitioner, location string
	from, until                int               // hours
	types                      map[string]string // "HH:MM" -> visit type; others are follow-ups
}{
	{"demo-sched-patel-clinic", "demo-dr-patel", "demo-loc-clinic", 9, 12, map[string]string{"09:00": "new-concern", "11:30": "checkup"}},
	{"demo-sched-patel-video", "demo-dr-patel", "demo-loc-video", 14, 16, map[string]string{"14:00": "new-concern"}},
	{"demo-sched-nguyen-clinic", "demo-dr-nguyen", "demo-loc-clinic", 13, 16, map[string]string{"13:00": "new-concern"}},
	{"demo-sched-nguyen-video", "demo-dr-nguyen", "demo-loc-video", 9, 11, nil},
}

// VisitTypes are the demo clinic's kinds of visit.
var VisitTypes = map[string]string{"follow-up": "Follow-up visit", "new-concern": "New health concern", "checkup": "Yearly check-up"}

// SlotDays is how far ahead the demo keeps bookable time.
const SlotDays = 31

// SeedSlots keeps a month of bookable time ahead of now: the Schedules,
// and every Slot from today for SlotDays days that does not exist yet
// (a Slot booked or written before is left as it is). It reports how many
// Slots it added.
func SeedSlots(ctx context.Context, st *store.Store, now time.Time, zone *time.Location) (int, error) {
	if zone == nil {
		zone = time.UTC
	}
	b := &fhir.Bundle{ResourceType: "Bundle", Type: "transaction"}
	put := func(r map[string]any) error {
		raw, err := json.Marshal(r)
		if err != nil {
			return err
		}
		b.Entry = append(b.Entry, &fhir.Entry{Resource: raw, Request: &fhir.EntryRequest{Method: "PUT", URL: fmt.Sprintf("%s/%s", r["resourceType"], r["id"])}})
		return nil
	}
	for _, sc := range schedules {
		if err := put(map[string]any{"resourceType": "Schedule", "id": sc.id, "active": true,
			"actor": []any{ref("Practitioner", sc.practitioner), ref("Location", sc.location)}}); err != nil {
			return 0, err
		}
	}
	today := now.In(zone)
	today = time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, zone)
	// The Slots written at an earlier start, booked or not, stay as they
	// are: one search finds them all.
	have := map[string]bool{}
	q, err := fhir.ParseQuery("Slot", url.Values{"start": {"ge" + today.UTC().Format(time.RFC3339)}, "_count": {"500"}}, false)
	if err != nil {
		return 0, err
	}
	for {
		page, err := st.Search(ctx, q)
		if err != nil {
			return 0, err
		}
		for _, r := range page.Matches {
			have[r.ID] = true
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	added := 0
	for d := 0; d < SlotDays; d++ {
		day := today.AddDate(0, 0, d)
		if day.Weekday() == time.Saturday || day.Weekday() == time.Sunday {
			continue
		}
		for _, sc := range schedules {
			for start := time.Date(day.Year(), day.Month(), day.Day(), sc.from, 0, 0, 0, zone); start.Hour() < sc.until; start = start.Add(30 * time.Minute) {
				id := fmt.Sprintf("%s-%s", sc.id[len("demo-sched-"):], start.Format("20060102-1504"))
				id = "demo-slot-" + id
				if have[id] {
					continue
				}
				typ := sc.types[start.Format("15:04")]
				if typ == "" {
					typ = "follow-up"
				}
				if err := put(map[string]any{"resourceType": "Slot", "id": id, "status": "free",
					"schedule":    ref("Schedule", sc.id),
					"serviceType": []any{obj{"coding": []any{coding(appointments.VisitTypeSystem, typ, VisitTypes[typ])}, "text": VisitTypes[typ]}},
					"start":       dateTime(start), "end": dateTime(start.Add(30 * time.Minute))}); err != nil {
					return 0, err
				}
				added++
			}
		}
	}
	if _, err := st.Process(ctx, b, store.BundleOptions{}); err != nil {
		return 0, fmt.Errorf("demo slots: %w", err)
	}
	return added, nil
}
