package views

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/clinical"
)

// Timeline is the record by date, newest first: visits, results,
// procedures and immunizations, a page at a time.
type Timeline struct {
	Entries []TimelineEntry `json:"entries"`
	// Kinds are the kinds shown (all when the person chose none).
	Kinds []string `json:"kinds"`
	// Before is the cursor of the next, older page; empty on the last.
	Before string `json:"before,omitempty"`
}

// TimelineEntry is one event of the record.
type TimelineEntry struct {
	Date time.Time `json:"date"`
	// Kind is visit, result, procedure or immunization.
	Kind   string `json:"kind"`
	Title  string `json:"title"`
	Detail string `json:"detail,omitempty"`
	// Key links a numeric result to its test's page.
	Key string `json:"key,omitempty"`
}

// TimelineKinds are the kinds of entries, in the order filters list them.
var TimelineKinds = []string{"visit", "result", "procedure", "immunization"}

const timelinePage = 40

// TimelineOptions are the timeline's filters and paging.
type TimelineOptions struct {
	Kinds  []string
	Before time.Time
	Lang   string
}

// ParseKinds reads ?kind= values; an unknown kind is Invalid, naming the
// parameter.
func ParseKinds(vals []string) ([]string, error) {
	var out []string
	for _, v := range vals {
		for _, k := range strings.Split(v, ",") {
			if k == "" {
				continue
			}
			if !slices.Contains(TimelineKinds, k) {
				return nil, apperr.New(apperr.Invalid, "kind must be one of visit, result, procedure, immunization")
			}
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	return out, nil
}

// Timeline builds one page of the timeline.
func (b *Builder) Timeline(ctx context.Context, req clinical.Request, o TimelineOptions) (*Timeline, error) {
	return build(ctx, b, req, "timeline", o.Lang, func(s *session) (*Timeline, error) { return s.timeline(ctx, o) })
}

func (s *session) timeline(ctx context.Context, o TimelineOptions) (*Timeline, error) {
	kinds := o.Kinds
	if len(kinds) == 0 {
		kinds = TimelineKinds
	}
	out := &Timeline{Entries: []TimelineEntry{}, Kinds: kinds}
	params := func(sort string) url.Values {
		p := url.Values{"_sort": {sort}}
		if !o.Before.IsZero() {
			p.Set("date", "lt"+o.Before.UTC().Format(time.RFC3339Nano))
		}
		return p
	}
	type source struct {
		kind, typ string
		build     func(m map[string]any) TimelineEntry
	}
	sources := []source{
		{"visit", "Encounter", func(m map[string]any) TimelineEntry {
			v := Visit{Type: firstConcept(m["type"]), Reason: firstConcept(m["reasonCode"])}
			return TimelineEntry{Date: firstDate(obj(m["period"]), "start"), Kind: "visit", Title: v.Type, Detail: v.Reason}
		}},
		{"result", "Observation", func(m map[string]any) TimelineEntry {
			r := s.result(m, o.Lang)
			d := strings.TrimSpace(r.Value + " " + r.Unit)
			e := TimelineEntry{Date: r.Date, Kind: "result", Title: r.Name, Detail: d}
			if hasNumber(m) {
				e.Key = r.Key
			}
			return e
		}},
		{"procedure", "Procedure", func(m map[string]any) TimelineEntry {
			return TimelineEntry{Date: firstDate(m, "performedDateTime", "performedPeriod"), Kind: "procedure", Title: conceptText(m["code"])}
		}},
		{"immunization", "Immunization", func(m map[string]any) TimelineEntry {
			return TimelineEntry{Date: firstDate(m, "occurrenceDateTime"), Kind: "immunization", Title: conceptText(m["vaccineCode"])}
		}},
	}
	var fns []func()
	results := make([][]TimelineEntry, len(sources))
	fetched := make([]int, len(sources))      // shown and held, dated or not
	oldest := make([]time.Time, len(sources)) // the oldest time fetched
	errs := make([]error, len(sources))
	for i, src := range sources {
		if !slices.Contains(kinds, src.kind) {
			continue
		}
		fns = append(fns, func() {
			ms, held, err := s.search(ctx, src.typ, params("-date"), timelinePage)
			if err != nil {
				errs[i] = err
				return
			}
			fetched[i] = len(ms) + len(held)
			for _, m := range ms {
				e := src.build(m)
				if !e.Date.IsZero() {
					results[i] = append(results[i], e)
					if oldest[i].IsZero() || e.Date.Before(oldest[i]) {
						oldest[i] = e.Date
					}
				}
			}
			for _, m := range held { // not shown, but they count for paging
				if d := obsDate(m); !d.IsZero() && (oldest[i].IsZero() || d.Before(oldest[i])) {
					oldest[i] = d
				}
			}
		})
	}
	s.b.parallel(fns...)
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	// A source that filled its page may have older entries it did not
	// give: keep only what is newer than the newest such horizon, so the
	// next page (before the oldest entry kept) skips nothing and repeats
	// nothing.
	var horizon time.Time
	for i := range sources {
		if fetched[i] >= timelinePage && oldest[i].After(horizon) {
			horizon = oldest[i]
		}
		out.Entries = append(out.Entries, results[i]...)
	}
	slices.SortStableFunc(out.Entries, func(a, b TimelineEntry) int { return b.Date.Compare(a.Date) })
	if !horizon.IsZero() {
		kept := slices.DeleteFunc(slices.Clone(out.Entries), func(e TimelineEntry) bool { return !e.Date.After(horizon) })
		if len(kept) == 0 {
			// A whole page at one time: show it and go on before it (more
			// entries at exactly that time than a page holds are not
			// reached).
			kept = slices.DeleteFunc(out.Entries, func(e TimelineEntry) bool { return e.Date.Before(horizon) })
			out.Before = horizon.UTC().Format(time.RFC3339Nano)
		} else {
			out.Before = kept[len(kept)-1].Date.UTC().Format(time.RFC3339Nano)
		}
		out.Entries = kept
	}
	return out, nil
}
