package views_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/audit/audittest"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/demo"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
	"carefront/internal/views"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// today is the day the demo population is built around in these tests.
var today = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

// now is the clock of the views: mid-morning of that day.
func now() time.Time { return today.Add(10 * time.Hour) }

type fixture struct {
	db       *sqldb.DB
	st       *store.Store
	aw       *audit.Writer
	gw       *clinical.Gateway
	b        *views.Builder
	policies *access.Store
}

// setup loads the demo population into db and returns a builder over it.
func setup(t *testing.T, db *sqldb.DB) *fixture {
	t.Helper()
	st := store.New(db)
	bundle, err := demo.Bundle(now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Process(context.Background(), bundle, store.BundleOptions{Import: true}); err != nil {
		t.Fatal(err)
	}
	return over(t, db, st)
}

// load writes a transaction Bundle's resources to the fixture's store.
func (f *fixture) load(t *testing.T, bundleJSON string) {
	t.Helper()
	b, err := fhir.ParseBundle(json.RawMessage(bundleJSON))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Process(context.Background(), b, store.BundleOptions{Import: true}); err != nil {
		t.Fatal(err)
	}
}

// over builds the fixture's gateway and builder over a source.
func over(t *testing.T, db *sqldb.DB, src clinical.Source) *fixture {
	t.Helper()
	sig, _ := audit.NewSigner(make([]byte, 32))
	aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test", CheckpointEvery: 1000})
	t.Cleanup(func() { aw.Close(context.Background()) })
	dict, err := views.LoadDictionary("")
	if err != nil {
		t.Fatal(err)
	}
	pol := &access.Store{DB: db, Audit: aw}
	gw := &clinical.Gateway{Source: src, Audit: aw, Policies: pol, Now: now}
	f := &fixture{db: db, aw: aw, gw: gw, policies: pol, b: &views.Builder{Gateway: gw, Dict: dict, Now: now}}
	if s, ok := src.(*store.Store); ok {
		f.st = s
	}
	return f
}

func as(patient string) clinical.Request {
	return clinical.Request{Principal: access.Principal{User: "Person/acct-" + patient, Patient: patient, Address: "192.0.2.7"}, RequestID: "0123456789abcdef"}
}

// golden compares v's JSON with testdata/name.json.
func golden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name+".json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/views -update to write it)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s view changed (-want +got); if meant, rerun with -update:\n%s", name, d)
	}
}

// TestViewsGolden pins every view's shape and content for Maria.
func TestViewsGolden(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := setup(t, db)
		ctx := context.Background()
		m := as(demo.Maria)
		build := map[string]func() (any, error){
			"home": func() (any, error) {
				return f.b.Home(ctx, m, views.HomeInput{Since: today.AddDate(0, 0, -30), Passkeys: 0, RecoveryCodesLeft: 10, Lang: "en"})
			},
			"results":     func() (any, error) { return f.b.Results(ctx, m, views.ResultsOptions{Lang: "en"}) },
			"trend-a1c":   func() (any, error) { return f.b.Trend(ctx, m, "4548-4", "en") },
			"trend-bp-es": func() (any, error) { return f.b.Trend(ctx, m, "85354-9", "es") },
			"medications": func() (any, error) { return f.b.Medications(ctx, m, "en") },
			"summary":     func() (any, error) { return f.b.Summary(ctx, m, "en") },
			"visits":      func() (any, error) { return f.b.Visits(ctx, m, "en") },
			"documents":   func() (any, error) { return f.b.Documents(ctx, m, "en") },
			"document": func() (any, error) {
				return f.b.Document(ctx, m, "demo-maria-visit-6-summary", "en", views.DocumentPolicy())
			},
			"timeline": func() (any, error) { return f.b.Timeline(ctx, m, views.TimelineOptions{Lang: "en"}) },
			"profile":  func() (any, error) { return f.b.Profile(ctx, m, "en") },
		}
		for name, fn := range build {
			t.Run(name, func(t *testing.T) {
				v, err := fn()
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				golden(t, name, v)
				raw, _ := json.Marshal(v)
				// Data minimization: only the profile carries contact
				// details, addresses and identifiers.
				if name != "profile" {
					for _, bad := range []string{"@example.com", "Elm Street", "MRN-", "555-01", "demo-maria\"", "Patient/"} {
						if strings.Contains(string(raw), bad) {
							t.Errorf("%s view carries %q", name, bad)
						}
					}
				}
			})
		}
	})
}

// TestOneAuditRecordPerView: a view of many searches writes one record,
// naming the view, the patient and the kinds of data shown.
func TestOneAuditRecordPerView(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := setup(t, db)
		ctx := context.Background()
		before := audittest.Count(t, db)
		if _, err := f.b.Home(ctx, as(demo.Maria), views.HomeInput{Lang: "en", Passkeys: 1, RecoveryCodesLeft: 10}); err != nil {
			t.Fatal(err)
		}
		if n := audittest.Count(t, db) - before; n != 1 {
			t.Fatalf("home view wrote %d audit records, want 1", n)
		}
		outcome, patient, ev := audittest.Last(t, db)
		if outcome != "0" || patient != "Patient/"+demo.Maria {
			t.Errorf("home record: outcome %s patient %s", outcome, patient)
		}
		for _, want := range []string{`"code":"view"`, `"code":"home"`, `"code":"Appointment"`, `"code":"Observation"`, `"code":"MedicationRequest"`, `"code":"Goal"`, `"reference":"Person/acct-demo-maria"`} {
			if !strings.Contains(ev, want) {
				t.Errorf("home record lacks %s: %s", want, ev)
			}
		}
	})
}

// TestAnotherPatientsDataIsRefused: every view reached by id answers an
// id of another patient's exactly as a missing one, and the refusal is in
// the audit trail.
func TestAnotherPatientsDataIsRefused(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := setup(t, db)
		ctx := context.Background()
		m := as(demo.Maria)
		for name, fn := range map[string]func() error{
			"document": func() error {
				_, err := f.b.Document(ctx, m, "demo-walter-visit-1-summary", "en", views.DocumentPolicy())
				return err
			},
			"document file": func() error {
				_, err := f.b.DocumentFile(ctx, m, "demo-walter-visit-1-summary")
				return err
			},
		} {
			err := fn()
			if apperr.CodeOf(err) != apperr.NotFound {
				t.Fatalf("%s of Walter's as Maria: %v, want NotFound", name, err)
			}
			outcome, _, ev := audittest.Last(t, db)
			if outcome != "4" || !strings.Contains(ev, "other-patient") || !strings.Contains(ev, "DocumentReference/demo-walter-visit-1-summary") {
				t.Errorf("%s refusal audited as %s: %s", name, outcome, ev)
			}
		}
		_, errMissing := f.b.Document(ctx, m, "no-such-document", "en", views.DocumentPolicy())
		_, errOther := f.b.Document(ctx, m, "demo-walter-visit-1-summary", "en", views.DocumentPolicy())
		if strings.ReplaceAll(apperr.MessageOf(errMissing), "no-such-document", "X") != strings.ReplaceAll(apperr.MessageOf(errOther), "demo-walter-visit-1-summary", "X") {
			t.Errorf("missing %q and another's %q differ", apperr.MessageOf(errMissing), apperr.MessageOf(errOther))
		}
		// Lists and trends hold only Maria's own data: Walter's alcohol
		// screening is not a trend of hers, and her export holds no
		// resource of another patient's compartment.
		if _, err := f.b.Trend(ctx, m, "75626-2", "en"); apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("Walter's test as Maria's trend: %v", err)
		}
		b, err := f.b.Export(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range b.Entry {
			if strings.Contains(string(e.Resource), "demo-walter") || strings.Contains(string(e.Resource), "demo-sam") {
				t.Errorf("Maria's export holds %s", e.FullURL)
			}
		}
		if len(b.Entry) < 50 {
			t.Errorf("Maria's export holds %d resources", len(b.Entry))
		}
		_, _, ev := audittest.Last(t, db)
		if !strings.Contains(ev, `"code":"110106"`) || !strings.Contains(ev, `"resource-count"`) {
			t.Errorf("export not audited as an export with its count: %s", ev)
		}
	})
}

// TestBadInputToViews: an unknown test code, malformed paging and filter
// values, and a document that cannot be shown each get a clear answer.
func TestBadInputToViews(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := setup(t, db)
		ctx := context.Background()
		m := as(demo.Maria)
		for _, key := range []string{"0000-0", "not a code", "http://x|", "1234567890123", "4548-4\n", "http://x|a\x00b", "http://loinc.org|4548-4\u202e", "http://x\x7f|a", "%00|a"} {
			if _, err := f.b.Trend(ctx, m, key, "en"); apperr.CodeOf(err) != apperr.NotFound {
				t.Errorf("Trend(%q) = %v, want NotFound", key, err)
			}
		}
		if _, err := views.ParseBefore("yesterday"); apperr.CodeOf(err) != apperr.Invalid || !strings.Contains(apperr.MessageOf(err), "before") {
			t.Errorf("ParseBefore(yesterday) = %v", err)
		}
		if _, err := views.ParseKinds([]string{"result,gossip"}); apperr.CodeOf(err) != apperr.Invalid || !strings.Contains(apperr.MessageOf(err), "kind") {
			t.Errorf("ParseKinds(gossip) = %v", err)
		}
		// Documents whose attachment is missing, too large, or HTML with
		// scripts, handlers and remote images.
		big := strings.Repeat("x", 2<<20)
		docs := `{"resourceType":"Bundle","type":"transaction","entry":[
 {"resource":{"resourceType":"DocumentReference","id":"d-empty","status":"current","subject":{"reference":"Patient/demo-maria"},"content":[{"attachment":{"contentType":"text/plain","title":"Empty"}}]},"request":{"method":"PUT","url":"DocumentReference/d-empty"}},
 {"resource":{"resourceType":"DocumentReference","id":"d-big","status":"current","subject":{"reference":"Patient/demo-maria"},"content":[{"attachment":{"contentType":"text/plain","data":"` + b64(big) + `"}}]},"request":{"method":"PUT","url":"DocumentReference/d-big"}},
 {"resource":{"resourceType":"DocumentReference","id":"d-html","status":"current","subject":{"reference":"Patient/demo-maria"},"content":[{"attachment":{"contentType":"text/html","data":"` + b64(`<h2>Letter</h2><p onclick="steal()">Dear Maria</p><script>alert(1)</script><img src="https://tracker.example/p.gif"><a href="javascript:alert(1)">x</a><style>p{}</style>`) + `"}}]},"request":{"method":"PUT","url":"DocumentReference/d-html"}},
 {"resource":{"resourceType":"DocumentReference","id":"d-odd","status":"current","subject":{"reference":"Patient/demo-maria"},"content":[{"attachment":{"contentType":"application/x-msdownload","data":"TVqQAAMAAAAEAAAA"}}]},"request":{"method":"PUT","url":"DocumentReference/d-odd"}}
]}`
		f.load(t, docs)
		d, err := f.b.Document(ctx, m, "d-empty", "en", views.DocumentPolicy())
		if err != nil || d.Problem != "missing" {
			t.Errorf("empty document: %+v, %v", d, err)
		}
		d, err = f.b.Document(ctx, m, "d-big", "en", views.DocumentPolicy())
		if err != nil || d.Problem != "too-large" || d.Text != "" {
			t.Errorf("big document: problem %q, %v", d.Problem, err)
		}
		d, err = f.b.Document(ctx, m, "d-html", "en", views.DocumentPolicy())
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"<script", "onclick", "tracker.example", "javascript:", "<style", "<img"} {
			if strings.Contains(d.HTML, bad) {
				t.Errorf("sanitized HTML keeps %q: %s", bad, d.HTML)
			}
		}
		if !strings.Contains(d.HTML, "<h2>Letter</h2>") || !strings.Contains(d.HTML, "Dear Maria") {
			t.Errorf("sanitized HTML lost the letter: %s", d.HTML)
		}
		d, err = f.b.Document(ctx, m, "d-odd", "en", views.DocumentPolicy())
		if err != nil || d.Format != "download" || d.Text != "" || d.HTML != "" {
			t.Errorf("odd document: %+v, %v", d, err)
		}
	})
}

func b64(s string) string {
	return strings.TrimSpace(string(mustJSONBase64(s)))
}

func mustJSONBase64(s string) []byte {
	raw, _ := json.Marshal([]byte(s)) // a JSON string of standard base64
	return raw[1 : len(raw)-1]
}

// TestReleaseChoiceAndShowNow: with "wait for review" for lab tests, a
// recent unreviewed lab result is held (listed apart, its value absent
// from every view and the export), shows after "Show it now", and shows
// by itself once the wait is over.
func TestReleaseChoiceAndShowNow(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := setup(t, db)
		ctx := context.Background()
		m := as(demo.Maria)
		by := access.Change{User: "Person/acct-demo-maria", Address: "192.0.2.7"}
		v0, _ := f.policies.Version(ctx, demo.Maria)
		if err := f.policies.SetRelease(ctx, demo.Maria, map[string]int{access.CategoryLab: 30}, by); err != nil {
			t.Fatal(err)
		}
		if v1, _ := f.policies.Version(ctx, demo.Maria); v1 <= v0 {
			t.Errorf("access version %d -> %d: not bumped", v0, v1)
		}
		r, err := f.b.Results(ctx, m, views.ResultsOptions{Lang: "en"})
		if err != nil {
			t.Fatal(err)
		}
		// The newest panel is 14 days old: within 30 days, so held.
		if len(r.Held) == 0 {
			t.Fatalf("no held results: %+v", r.Held)
		}
		newest := r.Held[0]
		if !strings.HasPrefix(newest.Refs[0], "DiagnosticReport/demo-maria-panel-12") || len(newest.Refs) != 5 {
			t.Errorf("held report refs %v", newest.Refs)
		}
		for _, g := range r.Groups {
			if g.Date.Equal(newest.Date) && g.Title != "" {
				t.Errorf("held panel also shown: %+v", g)
			}
		}
		tr, err := f.b.Trend(ctx, m, "4548-4", "en")
		if err != nil {
			t.Fatal(err)
		}
		if tr.Held == 0 || tr.Series[0].Points[len(tr.Series[0].Points)-1].Text == "6.8" {
			t.Errorf("trend shows the held A1c: held %d, last %+v", tr.Held, tr.Series[0].Points[len(tr.Series[0].Points)-1])
		}
		b, _ := f.b.Export(ctx, m)
		for _, e := range b.Entry {
			if strings.Contains(e.FullURL, "-12") && strings.Contains(e.FullURL, "demo-maria-a1c") {
				t.Errorf("export holds the held %s", e.FullURL)
			}
		}
		// Show it now.
		if err := f.policies.ShowNow(ctx, demo.Maria, newest.Refs, by); err != nil {
			t.Fatal(err)
		}
		r, _ = f.b.Results(ctx, m, views.ResultsOptions{Lang: "en"})
		for _, h := range r.Held {
			if h.Refs[0] == newest.Refs[0] {
				t.Errorf("shown result still held")
			}
		}
		if r.Groups[0].Title == "" || !r.Groups[0].Date.Equal(newest.Date) {
			t.Errorf("newest group after Show it now: %+v", r.Groups[0])
		}
		// A wait of 7 days releases the 14-day-old panel of another
		// category choice by itself; a wait of 30 holds the one before
		// only if within 30 days (it is 105 days old: shown).
		if err := f.policies.SetRelease(ctx, demo.Maria, map[string]int{access.CategoryLab: 7}, by); err != nil {
			t.Fatal(err)
		}
		r, _ = f.b.Results(ctx, m, views.ResultsOptions{Lang: "en"})
		if len(r.Held) != 0 {
			t.Errorf("after a 7-day wait, held: %+v", r.Held)
		}
		// Bad choices change nothing.
		vBefore, _ := f.policies.Version(ctx, demo.Maria)
		for _, bad := range []map[string]int{{"lab": 31}, {"lab": -1}, {"gossip": 3}} {
			if err := f.policies.SetRelease(ctx, demo.Maria, bad, by); apperr.CodeOf(err) != apperr.Invalid {
				t.Errorf("SetRelease(%v) = %v, want Invalid", bad, err)
			}
		}
		if v, _ := f.policies.Version(ctx, demo.Maria); v != vBefore {
			t.Errorf("bad choices moved the access version %d -> %d", vBefore, v)
		}
	})
}

// failing is a source whose searches of one type fail as an upstream
// server that timed out.
type failing struct {
	clinical.Source
	typ string
}

func (f failing) Search(ctx context.Context, q *fhir.Query) (*fhir.Page, error) {
	if q.Type == f.typ {
		return nil, apperr.Wrap(errors.New("upstream timeout"), apperr.Unavailable, "the health record system did not answer")
	}
	return f.Source.Search(ctx, q)
}

var _ clinical.Source = failing{}

// TestHomeShowsWhatItHasWhenOneSourceFails: the block whose source timed
// out says so; the rest renders.
func TestHomeShowsWhatItHasWhenOneSourceFails(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	base := setup(t, db)
	f := over(t, db, failing{Source: base.st, typ: "Appointment"})
	h, err := f.b.Home(context.Background(), as(demo.Maria), views.HomeInput{Lang: "en", Passkeys: 1, RecoveryCodesLeft: 10})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]views.Block{views.BlockAppointments}, h.Unavailable); diff != "" {
		t.Errorf("unavailable (-want +got):\n%s", diff)
	}
	if h.Next != nil || len(h.Medications) == 0 || len(h.Goals) == 0 || h.Empty {
		t.Errorf("home with appointments down: next %v, %d medications, %d goals, empty %v", h.Next, len(h.Medications), len(h.Goals), h.Empty)
	}
	outcome, _, _ := audittest.Last(t, db)
	if outcome != "8" {
		t.Errorf("home with a failed source audited as %s, want 8", outcome)
	}
}

// counting counts a source's searches.
type counting struct {
	clinical.Source
	n *atomic.Int64
}

func (c counting) Search(ctx context.Context, q *fhir.Query) (*fhir.Page, error) {
	c.n.Add(1)
	return c.Source.Search(ctx, q)
}

// TestHomeCacheIsPerPrincipalAndAccessVersion: a second look at home
// within the TTL is served from the cache and audited all the same;
// another account acting for the same patient, or a change of the
// patient's access version, builds it anew.
func TestHomeCacheIsPerPrincipalAndAccessVersion(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		base := setup(t, db)
		var n atomic.Int64
		f := over(t, db, counting{Source: base.st, n: &n})
		f.b.Cache = &views.Cache{TTL: time.Minute, Now: now}
		ctx := context.Background()
		in := views.HomeInput{Lang: "en", Passkeys: 1, RecoveryCodesLeft: 10}
		m := as(demo.Maria)
		if _, err := f.b.Home(ctx, m, in); err != nil {
			t.Fatal(err)
		}
		built, records := n.Load(), audittest.Count(t, db)
		h, err := f.b.Home(ctx, m, in)
		if err != nil || h.HeldResults != 0 {
			t.Fatal(err)
		}
		if n.Load() != built {
			t.Errorf("second look searched %d times, want 0 (cached)", n.Load()-built)
		}
		if got := audittest.Count(t, db) - records; got != 1 {
			t.Errorf("cache hit wrote %d audit records, want 1", got)
		}
		if _, _, ev := audittest.Last(t, db); !strings.Contains(ev, `"code":"Observation"`) || !strings.Contains(ev, `"code":"home"`) {
			t.Errorf("cache hit audited without its data kinds: %s", ev)
		}
		// Another account acting for Maria builds its own.
		other := m
		other.Principal.User = "Person/someone-else"
		before := n.Load()
		if _, err := f.b.Home(ctx, other, in); err != nil {
			t.Fatal(err)
		}
		if n.Load() == before {
			t.Error("another account's home was served from Maria's cache entry")
		}
		// A change of access shows at the very next look.
		if err := f.policies.SetRelease(ctx, demo.Maria, map[string]int{access.CategoryLab: 30}, access.Change{User: "Person/acct-demo-maria"}); err != nil {
			t.Fatal(err)
		}
		h, err = f.b.Home(ctx, m, in)
		if err != nil || h.HeldResults == 0 {
			t.Errorf("after choosing to wait for review, home holds %d results: %v", h.HeldResults, err)
		}
	})
}

// TestResultsAreReleasedWithTheirReport: a genetic report's results carry
// the plain laboratory category; when the patient waits for genetic
// results they wait with their report (in every view and the export), and
// when the patient waits for lab results but the report is reviewed, they
// show with it.
func TestResultsAreReleasedWithTheirReport(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := setup(t, db)
		ctx := context.Background()
		m := as(demo.Maria)
		when := now().AddDate(0, 0, -2).Format(time.RFC3339)
		obs := func(id, code, value string) string {
			return `{"resource":{"resourceType":"Observation","id":"` + id + `","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"` + code + `"}],"text":"Gene variant ` + id + `"},"subject":{"reference":"Patient/demo-maria"},"effectiveDateTime":"` + when + `","issued":"` + when + `","valueString":"` + value + `"},"request":{"method":"PUT","url":"Observation/` + id + `"}}`
		}
		f.load(t, `{"resourceType":"Bundle","type":"transaction","entry":[`+
			obs("gene-1", "48018-6", "BRCA1 variant found")+`,`+obs("gene-2", "48019-4", "BRCA2 none")+`,
 {"resource":{"resourceType":"DiagnosticReport","id":"gene-report","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0074","code":"GE"}]}],"code":{"text":"Hereditary cancer panel"},"subject":{"reference":"Patient/demo-maria"},"effectiveDateTime":"`+when+`","issued":"`+when+`","result":[{"reference":"Observation/gene-1"},{"reference":"Observation/gene-2"}]},"request":{"method":"PUT","url":"DiagnosticReport/gene-report"}}
]}`)
		by := access.Change{User: "Person/acct-demo-maria"}
		if err := f.policies.SetRelease(ctx, demo.Maria, map[string]int{access.CategoryGenetic: 30}, by); err != nil {
			t.Fatal(err)
		}
		shows := func() string {
			t.Helper()
			var all []any
			r, err := f.b.Results(ctx, m, views.ResultsOptions{Lang: "en"})
			if err != nil {
				t.Fatal(err)
			}
			tl, _ := f.b.Timeline(ctx, m, views.TimelineOptions{Kinds: []string{"result"}, Lang: "en"})
			h, _ := f.b.Home(ctx, m, views.HomeInput{Lang: "en", Passkeys: 1, RecoveryCodesLeft: 10})
			x, _ := f.b.Export(ctx, m)
			all = append(all, r.Groups, tl.Entries, h.NewResults, x.Entry)
			raw, _ := json.Marshal(all)
			return string(raw)
		}
		got := shows()
		for _, leak := range []string{"BRCA1", "BRCA2", "gene-1", "Hereditary cancer panel"} {
			if strings.Contains(got, leak) {
				t.Errorf("waiting genetic results show %q", leak)
			}
		}
		r, _ := f.b.Results(ctx, m, views.ResultsOptions{Lang: "en"})
		if len(r.Held) != 1 || r.Held[0].Title != "Hereditary cancer panel" || len(r.Held[0].Refs) != 3 {
			t.Fatalf("held: %+v", r.Held)
		}
		if err := f.policies.ShowNow(ctx, demo.Maria, r.Held[0].Refs[:1], by); err != nil { // the report alone
			t.Fatal(err)
		}
		if got := shows(); !strings.Contains(got, "BRCA1 variant found") || !strings.Contains(got, "Hereditary cancer panel") {
			t.Error("after Show it now on the report, its results do not show")
		}

		// Waiting for lab results, the results of a report shown at the
		// patient's request show with it.
		if err := f.policies.SetRelease(ctx, demo.Maria, map[string]int{access.CategoryGenetic: 0, access.CategoryLab: 30}, by); err != nil {
			t.Fatal(err)
		}
		if got := shows(); !strings.Contains(got, "BRCA2 none") {
			t.Error("results of a report shown at the patient's request are held by their own category")
		}
	})
}

// TestDocumentInABinary: a document whose file is a Binary shows when the
// Binary's securityContext is the patient's own document, and another
// patient's Binary, named from a document of one's own, is refused.
func TestDocumentInABinary(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := setup(t, db)
		ctx := context.Background()
		f.load(t, `{"resourceType":"Bundle","type":"transaction","entry":[
 {"resource":{"resourceType":"Binary","id":"letter-file","contentType":"text/plain","securityContext":{"reference":"DocumentReference/letter"},"data":"`+b64("Dear Maria, your results are fine.")+`"},"request":{"method":"PUT","url":"Binary/letter-file"}},
 {"resource":{"resourceType":"DocumentReference","id":"letter","status":"current","subject":{"reference":"Patient/demo-maria"},"description":"Results letter","content":[{"attachment":{"contentType":"text/plain","url":"Binary/letter-file"}}]},"request":{"method":"PUT","url":"DocumentReference/letter"}},
 {"resource":{"resourceType":"Binary","id":"walter-file","contentType":"text/plain","securityContext":{"reference":"Patient/demo-walter"},"data":"`+b64("Walter's private letter")+`"},"request":{"method":"PUT","url":"Binary/walter-file"}},
 {"resource":{"resourceType":"DocumentReference","id":"sneaky","status":"current","subject":{"reference":"Patient/demo-maria"},"description":"Points elsewhere","content":[{"attachment":{"contentType":"text/plain","url":"Binary/walter-file"}}]},"request":{"method":"PUT","url":"DocumentReference/sneaky"}}
]}`)
		d, err := f.b.Document(ctx, as(demo.Maria), "letter", "en", views.DocumentPolicy())
		if err != nil || d.Text != "Dear Maria, your results are fine." {
			t.Errorf("letter in a Binary: %+v, %v", d, err)
		}
		d, err = f.b.Document(ctx, as(demo.Maria), "sneaky", "en", views.DocumentPolicy())
		if err != nil || d.Text != "" || d.Problem != "missing" {
			t.Errorf("another patient's Binary through one's own document: %+v, %v", d, err)
		}
		if _, err := f.b.DocumentFile(ctx, as(demo.Maria), "sneaky"); apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("another patient's Binary as a file: %v", err)
		}
	})
}

// TestReportsKeptAsDocumentsWaitToo: a pathology report given as a
// DocumentReference waits for review like one given as a DiagnosticReport:
// listed apart, its content refused, released by Show it now; a visit
// summary is never held.
func TestReportsKeptAsDocumentsWaitToo(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := setup(t, db)
		ctx := context.Background()
		m := as(demo.Maria)
		when := now().AddDate(0, 0, -1).Format(time.RFC3339)
		f.load(t, `{"resourceType":"Bundle","type":"transaction","entry":[
 {"resource":{"resourceType":"DocumentReference","id":"path-report","status":"current","docStatus":"final","type":{"coding":[{"system":"http://loinc.org","code":"11526-1"}],"text":"Pathology study"},"subject":{"reference":"Patient/demo-maria"},"date":"`+when+`","description":"Skin biopsy report","content":[{"attachment":{"contentType":"text/plain","data":"`+b64("Benign nevus.")+`"}}]},"request":{"method":"PUT","url":"DocumentReference/path-report"}}
]}`)
		by := access.Change{User: "Person/acct-demo-maria"}
		if err := f.policies.SetRelease(ctx, demo.Maria, map[string]int{access.CategoryPathology: 14}, by); err != nil {
			t.Fatal(err)
		}
		docs, err := f.b.Documents(ctx, m, "en")
		if err != nil {
			t.Fatal(err)
		}
		if len(docs.Held) != 1 || docs.Held[0].Title != "Skin biopsy report" || len(docs.Documents) != 6 {
			t.Fatalf("documents: %d shown, held %+v", len(docs.Documents), docs.Held)
		}
		if d, err := f.b.Document(ctx, m, "path-report", "en", views.DocumentPolicy()); err != nil || d.Problem != "held" || d.Text != "" || d.Title != "" {
			t.Errorf("a waiting report's page: %+v, %v", d, err)
		}
		if _, err := f.b.DocumentFile(ctx, m, "path-report"); apperr.CodeOf(err) != apperr.Forbidden {
			t.Errorf("a waiting report's file: %v", err)
		}
		if err := f.b.CheckHeld(ctx, m, docs.Held[0].Refs); err != nil {
			t.Fatal(err)
		}
		if err := f.policies.ShowNow(ctx, demo.Maria, docs.Held[0].Refs, by); err != nil {
			t.Fatal(err)
		}
		d, err := f.b.Document(ctx, m, "path-report", "en", views.DocumentPolicy())
		if err != nil || d.Text != "Benign nevus." {
			t.Errorf("after Show it now: %+v, %v", d, err)
		}
		// Visit summaries are not reports: never held, whatever the choice.
		if err := f.b.CheckHeld(ctx, m, []string{"DocumentReference/demo-maria-visit-6-summary"}); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("a visit summary counted as waiting: %v", err)
		}
	})
}
