package demo_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"carefront/internal/audit"
	"carefront/internal/audit/audittest"
	"carefront/internal/clinical/store"
	"carefront/internal/demo"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

var today = time.Date(2026, 11, 23, 15, 4, 5, 0, time.UTC)

func count(t *testing.T, st *store.Store, typ, query string) int {
	t.Helper()
	vals, _ := url.ParseQuery(query + "&_total=accurate&_count=0")
	q, err := fhir.ParseQuery(typ, vals, false)
	if err != nil {
		t.Fatal(err)
	}
	page, err := st.Search(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return *page.Total
}

func TestSeedWritesThePopulationOnce(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		st := store.New(db)
		sig, _ := audit.NewSigner(make([]byte, 32))
		aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test", CheckpointEvery: 100})
		defer aw.Close(ctx)
		seeded, err := demo.Seed(ctx, st, aw, today)
		if err != nil || !seeded {
			t.Fatalf("Seed: %v %v", seeded, err)
		}
		// One Import record per demo patient, chained with the data.
		imports := func() int {
			n := 0
			for _, e := range audittest.Events(t, db) {
				if strings.Contains(e, `"value":"carefront-demo"`) {
					n++
				}
			}
			return n
		}
		if n := imports(); n != 4 {
			t.Errorf("%d Import audit records after the first seed, want 4", n)
		}
		for _, tc := range []struct {
			typ, query string
			want       int
		}{
			{"Patient", "_id=demo-maria,demo-walter,demo-sam,demo-lily", 4},
			// Three years of quarterly results for each of the five measures.
			{"Observation", "patient=demo-maria&code=http://loinc.org|4548-4&date=ge2023-11-23", 12},
			{"Observation", "patient=demo-maria&code=http://loinc.org|13457-7", 12},
			{"Observation", "patient=demo-maria&code=http://loinc.org|33914-3", 12},
			{"Observation", "patient=demo-maria&code=http://loinc.org|2345-7", 12},
			{"Observation", "patient=demo-maria&code=http://loinc.org|85354-9", 12},
			{"MedicationRequest", "patient=demo-maria&status=active", 4},
			{"AllergyIntolerance", "patient=demo-maria", 1},
			{"Immunization", "patient=demo-maria", 5},
			{"DocumentReference", "patient=demo-maria", 6},
			{"Appointment", "patient=demo-maria&date=ge2026-11-23", 2},
			{"CareTeam", "patient=demo-maria", 1},
			{"CarePlan", "patient=demo-maria", 1},
			{"Goal", "patient=demo-maria", 2},
			{"RelatedPerson", "patient=demo-walter", 1},
			{"RelatedPerson", "patient=demo-sam", 1},
			{"RelatedPerson", "patient=demo-lily", 1},
			{"Condition", "_security=http://terminology.hl7.org/CodeSystem/v3-ActCode|PSY", 1},
			{"Observation", "_security=http://terminology.hl7.org/CodeSystem/v3-ActCode|ETH", 1},
			{"Procedure", "patient=demo-sam&_security=http://terminology.hl7.org/CodeSystem/v3-ActCode|SEX", 1},
		} {
			if got := count(t, st, tc.typ, tc.query); got != tc.want {
				t.Errorf("%s?%s: %d, want %d", tc.typ, tc.query, got, tc.want)
			}
		}
		// Every demo person's age is what the story says.
		for id, age := range map[string]string{demo.Maria: "1968", demo.Walter: "1941", demo.Sam: "2011", demo.Lily: "2018"} {
			p, err := st.Read(ctx, "Patient", id)
			if err != nil || !strings.Contains(string(p.Raw), `"birthDate":"`+age) {
				t.Errorf("%s: %v %s", id, err, p.Raw)
			}
		}
		// A second start in the same five minutes changes nothing.
		seeded, err = demo.Seed(ctx, st, aw, today.Add(50*time.Second))
		if err != nil || seeded || imports() != 4 {
			t.Errorf("second Seed in the same five minutes: %v %v, %d Import records", seeded, err, imports())
		}
		// A start a week later moves the records that depend on the date:
		// the video visit is still minutes ahead, the newest results
		// still three days old, and nothing is duplicated.
		later := today.AddDate(0, 0, 7).Add(9 * time.Hour)
		seeded, err = demo.Seed(ctx, st, aw, later)
		if err != nil || !seeded {
			t.Fatalf("Seed a week later: %v %v", seeded, err)
		}
		video, err := st.Read(ctx, "Appointment", "demo-maria-appt-video")
		if err != nil || !strings.Contains(string(video.Raw), `"start":"`+later.Truncate(5*time.Minute).Add(10*time.Minute).Format(time.RFC3339)) {
			t.Errorf("video visit after a week: %v %s", err, video.Raw)
		}
		if got := count(t, st, "Observation", "patient=demo-maria&code=http://loinc.org|4548-4&date=ge"+later.AddDate(0, 0, -4).Format("2006-01-02")); got != 1 {
			t.Errorf("A1c results in the four days before the later start: %d, want 1", got)
		}
		if got := count(t, st, "Observation", "patient=demo-maria&code=http://loinc.org|4548-4"); got != 12 {
			t.Errorf("A1c results after re-seeding: %d, want 12", got)
		}
	})
}

func TestBundleIsDeterministic(t *testing.T) {
	a, err := demo.Bundle(today)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := demo.Bundle(today.Add(50 * time.Second))
	if len(a.Entry) != len(b.Entry) {
		t.Fatalf("%d vs %d entries", len(a.Entry), len(b.Entry))
	}
	for i := range a.Entry {
		if string(a.Entry[i].Resource) != string(b.Entry[i].Resource) {
			t.Fatalf("entry %d differs between two runs in the same five minutes", i)
		}
	}
}

// TestSeedSlotsKeepsAMonthAhead: a start writes a month of slots; the
// next start the same day writes none and leaves a booked slot busy; a
// start a week later adds only the days that came into the month.
func TestSeedSlotsKeepsAMonthAhead(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		st := store.New(db)
		n, err := demo.SeedSlots(ctx, st, today, time.UTC)
		if err != nil || n < 200 || count(t, st, "Slot", "status=free") != n {
			t.Fatalf("first start: %d slots, %v", n, err)
		}
		r, err := st.Read(ctx, "Slot", "demo-slot-patel-clinic-20261124-0900")
		if err != nil {
			t.Fatal(err)
		}
		busy := strings.Replace(string(r.Raw), `"status":"free"`, `"status":"busy"`, 1)
		if _, err := st.Update(ctx, "Slot", r.ID, []byte(busy), ""); err != nil {
			t.Fatal(err)
		}
		if again, err := demo.SeedSlots(ctx, st, today.Add(time.Hour), time.UTC); err != nil || again != 0 {
			t.Errorf("second start the same day wrote %d slots, %v", again, err)
		}
		if count(t, st, "Slot", "status=busy") != 1 {
			t.Error("the second start freed the booked slot")
		}
		later, err := demo.SeedSlots(ctx, st, today.AddDate(0, 0, 7), time.UTC)
		if err != nil || later == 0 || later > n/3 {
			t.Errorf("a week later %d new slots (of %d), %v", later, n, err)
		}
	})
}
