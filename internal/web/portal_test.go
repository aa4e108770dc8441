package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"carefront/internal/access"
	"carefront/internal/accesslog"
	"carefront/internal/audit"
	"carefront/internal/audit/audittest"
	"carefront/internal/clinical"
	"carefront/internal/clinical/importer"
	"carefront/internal/clinical/store"
	"carefront/internal/consent"
	"carefront/internal/demo"
	"carefront/internal/identity"
	"carefront/internal/ratelimit"
	"carefront/internal/shl"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
	"carefront/internal/views"
)

// withRecords loads the demo population into the harness's database and
// serves the record pages over it.
func withRecords(t *testing.T, db *sqldb.DB) func(*Options) {
	t.Helper()
	st := store.New(db)
	// The harness's clock is 2026-11-23 10:00 UTC; the demo is built
	// around that day.
	bundle, err := demo.Bundle(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Process(context.Background(), bundle, store.BundleOptions{Import: true}); err != nil {
		t.Fatal(err)
	}
	return func(o *Options) {
		aw := o.Auth.Audit
		grants := &consent.Grants{DB: db, Audit: aw, Mail: o.Auth, AcceptURL: o.BaseURL + "/caregiver/accept?code=", Store: st}
		pol := &access.Store{DB: db, Audit: aw, Loaders: []access.Loader{grants.LoadPolicy}}
		gw := &clinical.Gateway{Source: st, Audit: aw, Policies: pol, Now: db.Now}
		dict, err := views.LoadDictionary("")
		if err != nil {
			t.Fatal(err)
		}
		o.Clinical, o.Policies, o.Grants, o.Sanitizer = gw, pol, grants, views.DocumentPolicy()
		o.AccessLog = &accesslog.Log{DB: db, Accounts: o.Auth.Store, Grants: grants}
		o.Terms = &consent.TermsBook{DB: db, Audit: aw}
		o.Research = &consent.Research{DB: db, Audit: aw, Store: st}
		o.Views = &views.Builder{Gateway: gw, Dict: dict, Now: db.Now}
		o.Links = &shl.Links{DB: db, Audit: aw, Keys: o.Auth.Keys, Views: o.Views, BaseURL: o.BaseURL,
			Hasher: identity.NewHasher(identity.Params{Memory: 8 * 1024, Time: 1, Threads: 1}, 2)}
		o.DownloadLimiter = ratelimit.New(3.0/3600, 3, 1000)
	}
}

// recordHarness is an auth harness with the demo records, and an account
// for Maria's record.
func recordHarness(t *testing.T, db *sqldb.DB) *authHarness {
	t.Helper()
	h := newAuthHarness(t, db, withRecords(t, db))
	h.account(t, "maria@example.com", identity.Person, demo.Maria, "")
	return h
}

// account creates an account signIn can use.
func (h *authHarness) account(t *testing.T, email string, kind identity.Kind, patient, role string) {
	t.Helper()
	hash, _ := identity.HashPassword("a long enough passphrase", identity.Params{Memory: 8 * 1024, Time: 1, Threads: 1})
	a := &identity.Account{Kind: kind, Email: email, PasswordHash: hash, PatientID: patient, StaffRole: role}
	if err := h.store.CreateAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if err := h.store.SetTOTPSecret(context.Background(), a.ID, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"); err != nil {
		t.Fatal(err)
	}
}

var recordPages = []string{"/", "/results", "/results/4548-4", "/results/85354-9", "/visits", "/medications", "/summary",
	"/documents", "/documents/demo-maria-visit-6-summary", "/timeline", "/profile", "/settings/results", "/record/download"}

var viewPaths = []string{"home", "results", "results/4548-4", "timeline", "medications", "summary", "documents", "visits", "profile"}

// TestRecordPagesAndViews: signed in, Maria reaches every page of her own
// record, with navigation marking the page she is on, and every view as
// JSON; neither is ever stored by a browser or proxy.
func TestRecordPagesAndViews(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := recordHarness(t, db)
		h.signIn(t, "maria@example.com")
		for _, p := range recordPages {
			res, page := h.get(t, p)
			if res.StatusCode != 200 {
				t.Fatalf("GET %s = %d", p, res.StatusCode)
			}
			if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("GET %s Cache-Control %q", p, cc)
			}
			if !strings.Contains(page, `aria-label="Your record"`) {
				t.Errorf("GET %s has no record navigation", p)
			}
			current := regexp.MustCompile(`<a class="cf-recordnav__link" href="([^"]*)" aria-current="page">`).FindAllStringSubmatch(page, -1)
			wantNav := map[string]string{"/results/4548-4": "/results", "/results/85354-9": "/results", "/documents/demo-maria-visit-6-summary": "/documents"}[p]
			if wantNav == "" && p != "/profile" && p != "/settings/results" && p != "/record/download" {
				wantNav = p
			}
			switch {
			case wantNav == "" && len(current) != 0:
				t.Errorf("GET %s marks %v as current", p, current)
			case wantNav != "" && (len(current) != 1 || current[0][1] != wantNav):
				t.Errorf("GET %s marks %v as current, want %s", p, current, wantNav)
			}
			for _, leak := range []string{"demo-walter", "Brooks-Demo", "Lee-Demo"} {
				if strings.Contains(page, leak) {
					t.Errorf("GET %s shows %q", p, leak)
				}
			}
		}
		_, home := h.get(t, "/")
		for _, want := range []string{"Your next visit", "Video visit", "Anika Patel", "Hemoglobin A1c", "metformin", "Keep hemoglobin A1c below 7%", "Add a passkey", `href="/results/4548-4"`} {
			if !strings.Contains(home, want) {
				t.Errorf("home lacks %q", want)
			}
		}
		_, trend := h.get(t, "/results/4548-4")
		for _, want := range []string{"<svg", `role="img" aria-label="November 20, 2026: 6.7 % (High)"`, "<desc id=\"chart-desc\">12 results", "cf-chart__band", "<table"} {
			if !strings.Contains(trend, want) {
				t.Errorf("trend page lacks %q", want)
			}
		}
		for _, v := range viewPaths {
			res, body := h.get(t, "/api/views/"+v)
			if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") || res.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("GET /api/views/%s = %d %s %s", v, res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Cache-Control"))
			}
			if !json.Valid([]byte(body)) {
				t.Errorf("/api/views/%s is not JSON", v)
			}
		}
	})
}

// TestRecordNeedsTwoFactors: without a session, pages send the person to
// sign in and views answer 401 JSON (never a redirect); with one factor
// only, neither shows any record.
func TestRecordNeedsTwoFactors(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	h := recordHarness(t, db)
	for _, p := range recordPages[1:] {
		res, _ := h.get(t, p)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/signin" {
			t.Errorf("signed out GET %s = %d to %s", p, res.StatusCode, res.Header.Get("Location"))
		}
	}
	for _, v := range viewPaths {
		res, body := h.get(t, "/api/views/"+v)
		if res.StatusCode != 401 || !strings.Contains(body, `"error":"unauthorized"`) {
			t.Errorf("signed out /api/views/%s = %d %s", v, res.StatusCode, body)
		}
	}
	if res, _ := h.get(t, "/api/views/nothing"); res.StatusCode != 404 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Errorf("unknown view = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	// Password only: the second step is still to come.
	if res, _ := h.post(t, "/signin", url.Values{"email": {"maria@example.com"}, "password": {"a long enough passphrase"}}); res.StatusCode != 303 {
		t.Fatalf("sign-in: %d", res.StatusCode)
	}
	if res, body := h.get(t, "/api/views/home"); res.StatusCode != 401 {
		t.Errorf("one factor /api/views/home = %d %s", res.StatusCode, body)
	}
	if res, _ := h.get(t, "/results"); res.StatusCode != 303 || res.Header.Get("Location") != "/signin/verify" {
		t.Errorf("one factor /results = %d to %s", res.StatusCode, res.Header.Get("Location"))
	}
	if _, page := h.get(t, "/"); strings.Contains(page, "Hemoglobin") || !strings.Contains(page, `href="/activate"`) {
		t.Error("one factor / shows the record, or not the public page")
	}
}

// TestAnotherPatientsIDsAndBadParameters: another patient's document is a
// 404 page like a missing one; unknown tests are 404; malformed paging
// and filters are 400 naming the parameter. Nothing is shown of them.
func TestAnotherPatientsIDsAndBadParameters(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := recordHarness(t, db)
		h.signIn(t, "maria@example.com")
		_, missing := h.get(t, "/documents/no-such-doc")
		for _, p := range []string{"/documents/demo-walter-visit-1-summary", "/documents/demo-walter-visit-1-summary/file", "/documents/no-such-doc",
			"/results/75626-2", "/results/0000-0", "/results/http%3A%2F%2Fexample.org%7Cnope", "/documents/..%2F..%2Fetc"} {
			res, page := h.get(t, p)
			if res.StatusCode != 404 || strings.Contains(page, "Annual wellness") || strings.Contains(page, "Walter") {
				t.Errorf("GET %s = %d", p, res.StatusCode)
			}
		}
		_, other := h.get(t, "/documents/demo-walter-visit-1-summary")
		strip := regexp.MustCompile(`nonce="[^"]+"|[0-9a-f]{32}`)
		other = strings.ReplaceAll(other, "demo-walter-visit-1-summary", "no-such-doc")
		if strip.ReplaceAllString(other, "") != strip.ReplaceAllString(missing, "") {
			t.Errorf("another patient's document page differs from a missing one's:\n%s\n----\n%s", strip.ReplaceAllString(other, ""), strip.ReplaceAllString(missing, ""))
		}
		events := audittest.Events(t, db)
		found := false
		for _, e := range events {
			if strings.Contains(e, "DocumentReference/demo-walter-visit-1-summary") && strings.Contains(e, "other-patient") {
				found = true
			}
		}
		if !found {
			t.Error("the refused document is not in the audit trail as a denied access")
		}
		for p, param := range map[string]string{"/results?before=last-week": "before", "/timeline?before=2024-13-01": "before",
			"/timeline?kind=gossip": "kind", "/api/views/timeline?kind=result,x": "kind", "/api/views/results?before=x": "before"} {
			res, body := h.get(t, p)
			if res.StatusCode != 400 {
				t.Errorf("GET %s = %d, want 400", p, res.StatusCode)
			}
			if strings.HasPrefix(p, "/api/") && !strings.Contains(body, param) {
				t.Errorf("GET %s does not name %s: %s", p, param, body)
			}
		}
		// The timeline filters and pages.
		_, tl := h.get(t, "/api/views/timeline?kind=immunization")
		var v views.Timeline
		if err := json.Unmarshal([]byte(tl), &v); err != nil {
			t.Fatal(err)
		}
		if len(v.Entries) != 5 {
			t.Errorf("immunizations on the timeline: %d, want 5", len(v.Entries))
		}
		for _, e := range v.Entries {
			if e.Kind != "immunization" {
				t.Errorf("filtered timeline holds a %s", e.Kind)
			}
		}
	})
}

// TestStaffAndPeopleWithoutARecord: staff get a landing page with no
// patient data, and record pages send them home; a person with no record
// of their own (a caregiver, until caregiver access exists) is told why.
func TestStaffAndPeopleWithoutARecord(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	h := recordHarness(t, db)
	h.account(t, "linda@example.com", identity.Person, "", "")
	h.signIn(t, "linda@example.com")
	if _, page := h.get(t, "/"); !strings.Contains(page, "not linked to a health record") || strings.Contains(page, "Hemoglobin") {
		t.Error("a person with no record does not see the explanation")
	}
	if res, _ := h.get(t, "/results"); res.StatusCode != 303 || res.Header.Get("Location") != "/" {
		t.Errorf("no record /results = %d to %s", res.StatusCode, res.Header.Get("Location"))
	}
	if res, _ := h.get(t, "/api/views/home"); res.StatusCode != 403 {
		t.Errorf("no record /api/views/home = %d", res.StatusCode)
	}
	h.post(t, "/signout", nil)
	h.account(t, "nurse@example.com", identity.Staff, "", "clinician")
	h.signIn(t, "nurse@example.com")
	if _, page := h.get(t, "/"); !strings.Contains(page, "staff account") || strings.Contains(page, "Maria") || strings.Contains(page, "Your record") {
		t.Error("staff landing page wrong")
	}
	if res, _ := h.get(t, "/api/views/summary"); res.StatusCode != 403 {
		t.Errorf("staff /api/views/summary = %d", res.StatusCode)
	}
}

// TestDownloadNeedsStepUpAndIsLimited: a download without a recent second
// factor asks for one and then downloads; a fourth in an hour is 429
// with Retry-After; each is audited as an export with its count.
func TestDownloadNeedsStepUpAndIsLimited(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := recordHarness(t, db)
		h.signIn(t, "maria@example.com")
		h.clock.Add(10 * time.Minute) // past the step-up age
		res, _ := h.get(t, "/record/download/fhir")
		loc := res.Header.Get("Location")
		if res.StatusCode != 303 || !strings.HasPrefix(loc, "/signin/verify?return=") {
			t.Fatalf("download without step-up = %d to %s", res.StatusCode, loc)
		}
		res, _ = h.post(t, loc, url.Values{"code": {totpCode(t, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", h.clock.Now())}})
		if res.StatusCode != 303 || res.Header.Get("Location") != "/record/download/fhir" {
			t.Fatalf("step-up = %d to %s", res.StatusCode, res.Header.Get("Location"))
		}
		res, body := h.get(t, "/record/download/fhir")
		if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("download = %d %s", res.StatusCode, res.Header.Get("Content-Disposition"))
		}
		var b struct {
			ResourceType, Type string
			Entry              []struct{ FullURL string }
		}
		if err := json.Unmarshal([]byte(body), &b); err != nil || b.ResourceType != "Bundle" || b.Type != "collection" || len(b.Entry) < 50 {
			t.Fatalf("download is not a collection Bundle: %v %s %s %d", err, b.ResourceType, b.Type, len(b.Entry))
		}
		for _, e := range b.Entry {
			if strings.Contains(e.FullURL, "walter") || strings.Contains(e.FullURL, "-sam") {
				t.Errorf("download holds %s", e.FullURL)
			}
		}
		ev := audittest.Events(t, db)
		if last := ev[len(ev)-1]; !strings.Contains(last, `"code":"110106"`) || !strings.Contains(last, `"valueString":"`+strconv.Itoa(len(b.Entry))+`"`) {
			t.Errorf("download audited as %s", last)
		}
		if res, page := h.get(t, "/record/download/summary"); res.StatusCode != 200 || !strings.Contains(page, "My health summary") || !strings.Contains(page, "metformin") {
			t.Errorf("printable summary = %d", res.StatusCode)
		}
		h.get(t, "/record/download/fhir")
		res, page := h.get(t, "/record/download/fhir")
		if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" || !strings.Contains(page, "<html") {
			t.Errorf("fourth download = %d, Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
		}
	})
}

// TestReleaseSettingsAndShowNow: the patient chooses to wait for review
// of lab results; the newest panel then waits on the results page, and
// "Show it now" shows it. A value that is not offered changes nothing.
func TestReleaseSettingsAndShowNow(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := recordHarness(t, db)
		h.signIn(t, "maria@example.com")
		if res, _ := h.post(t, "/settings/results", url.Values{"wait-lab": {"99"}}); res.StatusCode != 400 {
			t.Errorf("wait of 99 days = %d", res.StatusCode)
		}
		if res, _ := h.post(t, "/settings/results", url.Values{"wait-lab": {"30"}, "wait-imaging": {"0"}}); res.StatusCode != 303 {
			t.Fatalf("save = %d", res.StatusCode)
		}
		if _, page := h.get(t, "/settings/results?saved=1"); !strings.Contains(page, `<option value="30" selected>`) {
			t.Error("the saved choice is not shown")
		}
		_, page := h.get(t, "/results")
		if !strings.Contains(page, "Your result is ready. You asked to see it after your care team reviews it.") {
			t.Fatal("no waiting result on the results page")
		}
		refs := regexp.MustCompile(`name="ref" value="([^"]+)"`).FindAllStringSubmatch(page, -1)
		form := url.Values{}
		for _, r := range refs {
			form.Add("ref", r[1])
		}
		for _, bad := range []url.Values{{}, {"ref": {"Patient/demo-maria"}}, {"ref": {"Observation/a b"}},
			{"ref": {"Observation/demo-maria-a1c-01"}},                                 // shown already: nothing to release
			{"ref": {"Observation/demo-walter-auditc"}},                                // someone else's
			{"ref": append([]string{"Observation/demo-maria-a1c-01"}, form["ref"]...)}, // one bad spoils all
		} {
			if res, _ := h.post(t, "/results/show", bad); res.StatusCode != 400 {
				t.Errorf("show-now %v = %d", bad, res.StatusCode)
			}
		}
		if _, page := h.get(t, "/results"); !strings.Contains(page, "You asked to see it after") {
			t.Fatal("a refused Show it now released something")
		}
		if res, _ := h.post(t, "/results/show", form); res.StatusCode != 303 {
			t.Fatalf("show-now = %d", res.StatusCode)
		}
		if _, page := h.get(t, "/results"); strings.Contains(page, "You asked to see it after") {
			t.Error("the result still waits after Show it now")
		}
		ev := audittest.Events(t, db)
		n := 0
		for _, e := range ev {
			if strings.Contains(e, `"code":"policy-change"`) {
				n++
			}
		}
		if n != 2 {
			t.Errorf("%d policy-change audit records, want 2 (settings, show now)", n)
		}
	})
}

// TestAccessChangeSeenByAnotherInstance: a release choice made through
// one carefront instance applies at the very next request served by
// another on the same PostgreSQL.
func TestAccessChangeSeenByAnotherInstance(t *testing.T) {
	o := sqldbtest.Options(t, sqldb.Postgres)
	db1 := sqldbtest.OpenWith(t, o)
	db2 := sqldbtest.OpenWith(t, o)
	h1 := recordHarness(t, db1)
	db2.Now = db1.Now
	sig, _ := audit.NewSigner(make([]byte, 32))
	aw2 := audit.NewWriter(db2, audit.Options{Signer: sig, Observer: "test-2", CheckpointEvery: 100})
	t.Cleanup(func() { aw2.Close(context.Background()) })
	pol2 := &access.Store{DB: db2, Audit: aw2}
	dict, _ := views.LoadDictionary("")
	gw2 := &clinical.Gateway{Source: store.New(db2), Audit: aw2, Policies: pol2, Now: db2.Now}
	b2 := &views.Builder{Gateway: gw2, Dict: dict, Now: db2.Now}
	req := clinical.Request{Principal: access.Principal{User: "Person/x", Patient: demo.Maria}}

	r, err := b2.Results(context.Background(), req, views.ResultsOptions{Lang: "en"})
	if err != nil || len(r.Held) != 0 {
		t.Fatalf("before: %v held, %v", len(r.Held), err)
	}
	h1.signIn(t, "maria@example.com")
	if res, _ := h1.post(t, "/settings/results", url.Values{"wait-lab": {"30"}}); res.StatusCode != 303 {
		t.Fatalf("save = %d", res.StatusCode)
	}
	r, err = b2.Results(context.Background(), req, views.ResultsOptions{Lang: "en"})
	if err != nil || len(r.Held) == 0 {
		t.Fatalf("the other instance does not hold the result at its next request: %d held, %v", len(r.Held), err)
	}
}

// TestSyntheaPatientSeesEveryPage: a patient imported from Synthea, with
// an account of their own, reaches every page of their record, including
// the trend of their most frequent test.
func TestSyntheaPatientSeesEveryPage(t *testing.T) {
	dir := os.Getenv("CAREFRONT_SYNTHEA_DIR")
	if dir == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CAREFRONT_SYNTHEA_DIR is not set on CI")
		}
		t.Skip("CAREFRONT_SYNTHEA_DIR not set")
	}
	db := sqldbtest.Open(t, sqldb.SQLite)
	h := recordHarness(t, db)
	sum, err := (&importer.Importer{Store: store.New(db), Audit: h.auth.Audit}).Run(context.Background(), []string{dir})
	if err != nil || len(sum.Failed) > 0 {
		t.Fatalf("import: %v %v", err, sum.Failed)
	}
	const adolph = "d67a0cff-8f7e-46f7-bb99-577a6623e59a" // Adolph Smith
	h.account(t, "adolph@example.com", identity.Person, adolph, "")
	h.signIn(t, "adolph@example.com")
	for _, p := range recordPages {
		if strings.HasPrefix(p, "/results/") || strings.HasPrefix(p, "/documents/") {
			continue
		}
		res, page := h.get(t, p)
		if res.StatusCode != 200 || strings.Contains(page, "Maria") {
			t.Errorf("GET %s = %d", p, res.StatusCode)
		}
	}
	_, results := h.get(t, "/results")
	links := regexp.MustCompile(`href="(/results/[^"?]+)"`).FindAllStringSubmatch(results, -1)
	if len(links) == 0 {
		t.Fatal("no trend links on the results page")
	}
	for _, l := range links {
		if res, page := h.get(t, l[1]); res.StatusCode != 200 || !strings.Contains(page, "<table") {
			t.Errorf("GET %s = %d", l[1], res.StatusCode)
		}
	}
	if res, _ := h.get(t, "/api/views/results"); res.StatusCode != 200 {
		t.Errorf("results view = %d", res.StatusCode)
	}
}
