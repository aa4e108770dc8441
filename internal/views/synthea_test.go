package views_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"carefront/internal/clinical/importer"
	"carefront/internal/clinical/store"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
	"carefront/internal/views"
)

// syntheaDir is where the Synthea fixture Bundles are; on CI they must be
// there.
func syntheaDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CAREFRONT_SYNTHEA_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "fixtures", "synthea-r4")
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.json")); len(files) == 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("no Synthea fixtures in %s on CI; set CAREFRONT_SYNTHEA_DIR", dir)
		}
		t.Skipf("no Synthea fixtures in %s", dir)
	}
	return dir
}

// importSynthea imports the fixtures and returns their patients' ids.
func importSynthea(t *testing.T, db *sqldb.DB, f *fixture) []string {
	t.Helper()
	ctx := context.Background()
	im := &importer.Importer{Store: f.st, Audit: f.aw}
	sum, err := im.Run(ctx, []string{syntheaDir(t)})
	if err != nil || len(sum.Failed) > 0 {
		t.Fatalf("import: %v %v", err, sum.Failed)
	}
	q, _ := fhir.ParseQuery("Patient", url.Values{"_count": {"100"}}, false)
	page, err := f.st.Search(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range page.Matches {
		if len(p.ID) > 20 { // Synthea's ids are UUIDs; the demo's are short
			ids = append(ids, p.ID)
		}
	}
	if len(ids) < 5 {
		t.Fatalf("%d Synthea patients imported", len(ids))
	}
	return ids
}

// count is how many resources of typ the store holds in patient's
// compartment, read apart from the views.
func count(t *testing.T, f *fixture, typ, patient string) int {
	t.Helper()
	q, _ := fhir.ParseQuery(typ, url.Values{"_total": {"accurate"}, "_count": {"0"}}, false)
	q.Compartment = patient
	page, err := f.st.Search(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return *page.Total
}

// TestEverySyntheaPatientsViews builds every view, every trend and every
// document of each imported Synthea patient: years of encounters, vitals
// and labs render without an error.
func TestEverySyntheaPatientsViews(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := over(t, db, store.New(db))
		ids := importSynthea(t, db, f)
		ctx := context.Background()
		for _, id := range ids {
			req := as(id)
			home, err := f.b.Home(ctx, req, views.HomeInput{Lang: "es", Passkeys: 1, RecoveryCodesLeft: 5})
			if err != nil {
				t.Fatalf("%s home: %v", id, err)
			}
			if home.Empty {
				t.Errorf("%s: home is empty", id)
			}
			res, err := f.b.Results(ctx, req, views.ResultsOptions{Lang: "en"})
			if err != nil || len(res.Groups) == 0 {
				t.Fatalf("%s results: %d groups, %v", id, len(res.Groups), err)
			}
			// Page through every result: each older page starts before the
			// last, and every result shows exactly once.
			seen, pages := 0, 1
			for _, g := range res.Groups {
				seen += len(g.Results)
			}
			for before := res.Before; before != ""; pages++ {
				at, err := views.ParseBefore(before)
				if err != nil {
					t.Fatal(err)
				}
				next, err := f.b.Results(ctx, req, views.ResultsOptions{Before: at, Lang: "en"})
				if err != nil {
					t.Fatalf("%s results before %s: %v", id, before, err)
				}
				for _, g := range next.Groups {
					if !g.Date.Before(at) {
						t.Errorf("%s: page before %s holds a group of %s", id, before, g.Date)
					}
					seen += len(g.Results)
				}
				before = next.Before
				if pages > 100 {
					t.Fatalf("%s: results never end", id)
				}
			}
			if want := count(t, f, "Observation", id); seen != want {
				t.Errorf("%s: %d results over %d pages, want %d", id, seen, pages, want)
			}
			// The same for the timeline, with every kind.
			entries := 0
			before := time.Time{}
			for page := 0; ; page++ {
				tl, err := f.b.Timeline(ctx, req, views.TimelineOptions{Before: before, Lang: "en"})
				if err != nil {
					t.Fatalf("%s timeline: %v", id, err)
				}
				entries += len(tl.Entries)
				if tl.Before == "" || page > 100 {
					break
				}
				if before, err = views.ParseBefore(tl.Before); err != nil {
					t.Fatal(err)
				}
			}
			if want := count(t, f, "Encounter", id) + count(t, f, "Observation", id) + count(t, f, "Procedure", id) + count(t, f, "Immunization", id); entries != want {
				t.Errorf("%s: %d timeline entries, want %d", id, entries, want)
			}
			keys := map[string]bool{}
			for _, g := range res.Groups {
				for _, r := range g.Results {
					if r.Trend {
						keys[r.Key] = true
					}
				}
			}
			for k := range keys {
				if _, err := f.b.Trend(ctx, req, k, "es"); err != nil {
					t.Errorf("%s trend %s: %v", id, k, err)
				}
			}
			if _, err := f.b.Medications(ctx, req, "en"); err != nil {
				t.Errorf("%s medications: %v", id, err)
			}
			if _, err := f.b.Summary(ctx, req, "en"); err != nil {
				t.Errorf("%s summary: %v", id, err)
			}
			v, err := f.b.Visits(ctx, req, "en")
			if err != nil || len(v.Past) == 0 {
				t.Errorf("%s visits: %d past, %v", id, len(v.Past), err)
			}
			docs, err := f.b.Documents(ctx, req, "en")
			if err != nil {
				t.Errorf("%s documents: %v", id, err)
			}
			for _, d := range docs.Documents {
				if _, err := f.b.Document(ctx, req, d.ID, "en", views.DocumentPolicy()); err != nil {
					t.Errorf("%s document %s: %v", id, d.ID, err)
				}
			}
			tl, err := f.b.Timeline(ctx, req, views.TimelineOptions{Lang: "en"})
			if err != nil || len(tl.Entries) == 0 {
				t.Errorf("%s timeline: %v", id, err)
			}
			if _, err := f.b.Profile(ctx, req, "en"); err != nil {
				t.Errorf("%s profile: %v", id, err)
			}
			if _, err := f.b.Export(ctx, req); err != nil {
				t.Errorf("%s export: %v", id, err)
			}
		}
	})
}
