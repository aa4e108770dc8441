package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"carefront/internal/clinical/store"
	"carefront/internal/consent"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

const (
	psyLabel   = consent.ActCode + "|PSY"
	part2Label = consent.ActCode + "|42CFRPart2"
	rehab      = "http://rehab.example/ehr"
)

func labeler(t *testing.T, part2 ...string) *consent.Labeler {
	t.Helper()
	l, err := consent.LoadLabels()
	if err != nil {
		t.Fatal(err)
	}
	l.Part2Sources = part2
	return l
}

// writeLabelled writes, for patient p, a depression diagnosis (labelled
// PSY by its ICD-10-CM code, not by its source), a diabetes diagnosis,
// and a result from a substance use program's system.
func writeLabelled(t *testing.T, s *store.Store, p string) {
	t.Helper()
	cond := func(id, code string) string {
		return fmt.Sprintf(`{"resource":{"resourceType":"Condition","id":"%s","code":{"coding":[{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"%s"}]},
			"subject":{"reference":"Patient/%s"}},"request":{"method":"PUT","url":"Condition/%s"}}`, id, code, p, id)
	}
	entries := []string{
		fmt.Sprintf(`{"resource":{"resourceType":"Patient","id":"%s"},"request":{"method":"PUT","url":"Patient/%s"}}`, p, p),
		cond(p+"-dep", "F32.9"), cond(p+"-dm", "E11.9"),
		fmt.Sprintf(`{"resource":{"resourceType":"Observation","id":"%s-uds","status":"final","meta":{"source":"%s"},
			"code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},"subject":{"reference":"Patient/%s"}},
			"request":{"method":"PUT","url":"Observation/%s-uds"}}`, p, rehab, p, p),
	}
	b, err := fhir.ParseBundle(json.RawMessage(`{"resourceType":"Bundle","type":"transaction","entry":[` + strings.Join(entries, ",") + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Process(context.Background(), b, store.BundleOptions{}); err != nil {
		t.Fatal(err)
	}
}

// narrowed searches typ in p's compartment leaving out labels, with an
// accurate total.
func narrowed(t *testing.T, s *store.Store, typ, p string, labels ...string) ([]string, int) {
	t.Helper()
	q, err := fhir.ParseQuery(typ, map[string][]string{"_total": {"accurate"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	q.Compartment, q.ExcludeLabels = p, labels
	page, err := s.Search(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	got := ids(page.Matches)
	slices.Sort(got)
	return got, *page.Total
}

func versions(t *testing.T, s *store.Store, typ, id string) int {
	t.Helper()
	h, err := s.History(context.Background(), typ, id)
	if err != nil {
		t.Fatal(err)
	}
	return len(h)
}

// The labels carefront derives from codes are indexed with each write,
// beside the source's own, without a new resource version: a search
// leaves them out before it runs, so its total does not count them, and
// _security finds them.
func TestDerivedLabelsAreIndexed(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s := store.New(db)
		s.Labels = labeler(t)
		writeLabelled(t, s, "p1")
		got, total := narrowed(t, s, "Condition", "p1", psyLabel)
		if !slices.Equal(got, []string{"p1-dm"}) || total != 1 {
			t.Errorf("without PSY: %v, total %d; want [p1-dm], 1", got, total)
		}
		if got, total := narrowed(t, s, "Condition", "p1"); len(got) != 2 || total != 2 {
			t.Errorf("not narrowed: %v, total %d", got, total)
		}
		if got := ids(search(t, s, "Condition", "_security="+psyLabel).Matches); !slices.Equal(got, []string{"p1-dep"}) {
			t.Errorf("_security=PSY finds %v", got)
		}
		if n := versions(t, s, "Condition", "p1-dep"); n != 1 {
			t.Errorf("the labelled Condition has %d versions, want 1", n)
		}
		// A new version with a code that is not sensitive is indexed
		// without the label.
		raw := `{"resourceType":"Condition","id":"p1-dep","code":{"coding":[{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"R53.83"}]},"subject":{"reference":"Patient/p1"}}`
		if _, err := s.Update(context.Background(), "Condition", "p1-dep", []byte(raw), ""); err != nil {
			t.Fatal(err)
		}
		if got, _ := narrowed(t, s, "Condition", "p1", psyLabel); len(got) != 2 {
			t.Errorf("after recoding: %v", got)
		}
	})
}

// A store written before labels were indexed, or with another labelling
// (here: a program newly marked Part 2), is labelled again by Relabel,
// batch by batch, without writing a resource version; a second run finds
// nothing to do.
func TestRelabelFollowsTheLabelling(t *testing.T) {
	defer store.SetRelabelBatch(3)()
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		old := store.New(db) // a build that indexed no derived labels
		for i := range 3 {
			writeLabelled(t, old, fmt.Sprintf("p%d", i))
		}
		if got, _ := narrowed(t, old, "Condition", "p0", psyLabel); len(got) != 2 {
			t.Fatalf("nothing derived is indexed yet, yet %v", got)
		}

		s := store.New(db)
		s.Labels = labeler(t)
		if st, err := s.LabelIndex(ctx); err != nil || st.Current || st.Fingerprint != "" {
			t.Fatalf("LabelIndex before = %+v, %v", st, err)
		}
		n, err := s.Relabel(ctx)
		if err != nil || n != 12 {
			t.Fatalf("Relabel = %d, %v; want 12 resources", n, err)
		}
		if st, _ := s.LabelIndex(ctx); !st.Current || st.Fingerprint != s.Labels.Fingerprint() {
			t.Errorf("LabelIndex after = %+v", st)
		}
		for i := range 3 {
			p := fmt.Sprintf("p%d", i)
			if got, total := narrowed(t, s, "Condition", p, psyLabel); !slices.Equal(got, []string{p + "-dm"}) || total != 1 {
				t.Errorf("%s without PSY: %v, total %d", p, got, total)
			}
		}
		if n, err := s.Relabel(ctx); n != 0 || err != nil {
			t.Errorf("Relabel again = %d, %v; want nothing to do", n, err)
		}

		// The clinic marks the program Part 2: every one of its records
		// is labelled, whatever its codes.
		s.Labels = labeler(t, rehab)
		if st, _ := s.LabelIndex(ctx); st.Current {
			t.Error("another Part 2 source list is the same labelling")
		}
		if n, err := s.Relabel(ctx); n != 12 || err != nil {
			t.Fatalf("Relabel for Part 2 = %d, %v", n, err)
		}
		if got, total := narrowed(t, s, "Observation", "p2", part2Label); len(got) != 0 || total != 0 {
			t.Errorf("Part 2 result still found: %v, total %d", got, total)
		}
		if got, _ := narrowed(t, s, "Observation", "p2"); !slices.Equal(got, []string{"p2-uds"}) {
			t.Errorf("not narrowed: %v", got)
		}
		// The source's own label and the derived ones, once each.
		if n := countTokens(t, db, "Condition", "p1-dep", "_security"); n != 2 {
			t.Errorf("p1-dep has %d _security rows, want 2 (PSY, R)", n)
		}
		for _, r := range []string{"Condition/p0-dep", "Observation/p0-uds", "Patient/p0"} {
			typ, id, _ := strings.Cut(r, "/")
			if n := versions(t, s, typ, id); n != 1 {
				t.Errorf("%s has %d versions after relabelling, want 1", r, n)
			}
		}
	})
}

// Several processes relabelling while others write leave one set of rows
// per resource, each from its current version.
func TestRelabelAlongsideWrites(t *testing.T) {
	defer store.SetRelabelBatch(4)()
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		old := store.New(db)
		for i := range 6 {
			writeLabelled(t, old, fmt.Sprintf("p%d", i))
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := store.New(db)
				s.Labels = labeler(t)
				if _, err := s.Relabel(ctx); err != nil {
					errs <- err
				}
			}()
		}
		wg.Add(1)
		go func() { // a process writing meanwhile, with the same labelling
			defer wg.Done()
			s := store.New(db)
			s.Labels = labeler(t)
			for i := range 6 {
				raw := fmt.Sprintf(`{"resourceType":"Condition","id":"p%d-dm","code":{"coding":[{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"F41.1"}]},"subject":{"reference":"Patient/p%d"}}`, i, i)
				if _, err := s.Update(ctx, "Condition", fmt.Sprintf("p%d-dm", i), []byte(raw), ""); err != nil {
					errs <- err
				}
			}
		}()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		s := store.New(db)
		s.Labels = labeler(t)
		for i := range 6 {
			p := fmt.Sprintf("p%d", i)
			if got, total := narrowed(t, s, "Condition", p, psyLabel); len(got) != 0 || total != 0 {
				t.Errorf("%s: both diagnoses are now mental health, yet %v (total %d) show", p, got, total)
			}
			for _, id := range []string{p + "-dep", p + "-dm"} {
				if n := countTokens(t, db, "Condition", id, "_security"); n != 2 {
					t.Errorf("%s has %d _security rows, want 2", id, n)
				}
			}
		}
	})
}

func countTokens(t *testing.T, db *sqldb.DB, typ, id, param string) int {
	t.Helper()
	var n int
	err := db.Read(context.Background(), func(tx *sqldb.Tx) error {
		return tx.QueryRow(context.Background(), "SELECT COUNT(*) FROM fhir_token WHERE type = ? AND id = ? AND param = ?", typ, id, param).Scan(&n)
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
