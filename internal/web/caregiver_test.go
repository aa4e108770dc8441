package web

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"carefront/internal/access"
	"carefront/internal/audit/audittest"
	"carefront/internal/clinical/store"
	"carefront/internal/consent"
	"carefront/internal/demo"
	"carefront/internal/identity"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
	"carefront/internal/views"
)

// grant gives email caregiver access to patient, as the clinic would.
func (h *authHarness) grant(t *testing.T, patient, email, preset string) *consent.Grant {
	t.Helper()
	ctx := context.Background()
	rec, err := store.New(h.db).Read(ctx, "Patient", patient)
	if err != nil {
		t.Fatal(err)
	}
	name, birth := views.PatientFacts(rec)
	g, err := (&consent.Grants{DB: h.db, Audit: h.auth.Audit, Store: store.New(h.db)}).Grant(ctx, consent.NewGrant{Patient: patient, Email: email,
		Preset: preset, Until: h.clock.Now().AddDate(1, 0, 0), PatientBirth: birth, PatientName: name, By: "carefront-cli"})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestCaregiverSeesWhatTheGrantCovers: Linda, with "medications,
// appointments and visits" for her father, lands on his record (her only
// one), named in a banner on every page; every link keeps to his record;
// she sees his medicines and visits, and neither his results nor the
// pages and views about them; she cannot change his settings. Every view
// is audited with him as the subject and her acting on his behalf.
func TestCaregiverSeesWhatTheGrantCovers(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := recordHarness(t, db)
		h.account(t, "linda@example.com", identity.Person, "", "")
		h.grant(t, demo.Walter, "linda@example.com", "medications-visits")
		h.signIn(t, "linda@example.com")

		res, _ := h.get(t, "/")
		if res.StatusCode != 303 || res.Header.Get("Location") != "/?for=demo-walter" {
			t.Fatalf("home = %d to %q, want her one record", res.StatusCode, res.Header.Get("Location"))
		}
		_, home := h.get(t, "/?for=demo-walter")
		for _, want := range []string{"Viewing: Walter Brooks-Demo&#39;s record", "apixaban", "Annual follow-up",
			`href="/medications?for=demo-walter"`, `href="/visits?for=demo-walter"`} {
			if !strings.Contains(home, want) {
				t.Errorf("Walter's home for Linda lacks %q", want)
			}
		}
		for _, not := range []string{`href="/results`, "AUDIT-C", `href="/profile`, "Maria"} {
			if strings.Contains(home, not) {
				t.Errorf("Walter's home for Linda shows %q", not)
			}
		}
		for _, p := range []string{"/medications?for=demo-walter", "/visits?for=demo-walter", "/timeline?for=demo-walter", "/summary?for=demo-walter"} {
			res, page := h.get(t, p)
			if res.StatusCode != 200 || !strings.Contains(page, "Viewing: Walter Brooks-Demo") {
				t.Errorf("GET %s = %d, banner %v", p, res.StatusCode, strings.Contains(page, "Viewing:"))
			}
			if strings.Contains(page, "AUDIT-C") || strings.Contains(page, "75626-2") {
				t.Errorf("GET %s shows a result", p)
			}
		}
		for _, p := range []string{"/results?for=demo-walter", "/results/75626-2?for=demo-walter", "/documents?for=demo-walter",
			"/api/views/results?for=demo-walter", "/api/views/results/75626-2?for=demo-walter"} {
			if res, page := h.get(t, p); res.StatusCode != 403 || strings.Contains(page, "AUDIT") {
				t.Errorf("GET %s = %d, want 403", p, res.StatusCode)
			}
		}
		_, js := h.get(t, "/api/views/home?for=demo-walter")
		var hv views.Home
		if err := json.Unmarshal([]byte(js), &hv); err != nil {
			t.Fatal(err)
		}
		if len(hv.Medications) == 0 || hv.Next == nil || len(hv.NewResults)+len(hv.LatestResults) != 0 {
			t.Errorf("home view for Linda: %d medications, next %v, %d results", len(hv.Medications), hv.Next != nil, len(hv.NewResults)+len(hv.LatestResults))
		}
		// Only Walter changes his settings.
		for _, p := range []string{"/settings/results?for=demo-walter"} {
			if res, _ := h.get(t, p); res.StatusCode != 403 {
				t.Errorf("GET %s = %d, want 403", p, res.StatusCode)
			}
		}
		before := audittest.Count(t, db)
		if res, _ := h.post(t, "/settings/results", url.Values{"for": {"demo-walter"}, "wait-lab": {"30"}}); res.StatusCode != 403 {
			t.Errorf("caregiver saves Walter's settings = %d", res.StatusCode)
		}
		pol, err := (&access.Store{DB: db}).Policy(context.Background(), demo.Walter)
		if err != nil || len(pol.Wait) != 0 || audittest.Count(t, db) != before+1 {
			t.Errorf("a refused settings change changed something: %v, %d records", pol.Wait, audittest.Count(t, db)-before)
		}
		if _, _, e := audittest.Last(t, db); !strings.Contains(e, "caregiver-not-permitted") {
			t.Errorf("the refusal is not audited: %s", e)
		}
		// Her own record? She has none: a page without for goes home.
		if res, _ := h.get(t, "/medications"); res.StatusCode != 303 || res.Header.Get("Location") != "/" {
			t.Errorf("/medications without for = %d to %s", res.StatusCode, res.Header.Get("Location"))
		}
		_, _, last := audittest.Last(t, db)
		if !strings.Contains(last, `"on-behalf-of"`) && !strings.Contains(last, "Patient/demo-walter") {
			t.Errorf("last record does not name Walter as the subject: %s", last)
		}
		views := 0
		for _, e := range audittest.Events(t, db) {
			if strings.Contains(e, `"code":"view"`) && strings.Contains(e, "Patient/demo-walter") {
				views++
				if !strings.Contains(e, "Patient/demo-walter") || strings.Contains(e, "demo-maria") {
					t.Errorf("view record: %s", e)
				}
			}
		}
		if views == 0 {
			t.Error("no view of Walter's record is audited")
		}
	})
}

// TestCaregiverRevokedIsRefusedAtOnce: once the grant is revoked, the
// caregiver's very next page for the record sends them home with "You no
// longer have access to NAME's record", the view API answers 403, each
// refusal is audited, and their session stays valid.
func TestCaregiverRevokedIsRefusedAtOnce(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := recordHarness(t, db)
		h.account(t, "linda@example.com", identity.Person, "", "")
		g := h.grant(t, demo.Walter, "linda@example.com", "full")
		h.signIn(t, "linda@example.com")
		if res, page := h.get(t, "/results?for=demo-walter"); res.StatusCode != 200 || !strings.Contains(page, "AUDIT-C") && !strings.Contains(page, "Alcohol") {
			t.Fatalf("full access results = %d", res.StatusCode)
		}
		if _, err := (&consent.Grants{DB: db, Audit: h.auth.Audit, Store: store.New(db)}).Revoke(context.Background(), consent.Revocation{ID: g.ID, Patient: demo.Walter, By: "Person/walter"}); err != nil {
			t.Fatal(err)
		}
		res, _ := h.get(t, "/results?for=demo-walter")
		if res.StatusCode != 303 || res.Header.Get("Location") != "/?ended=demo-walter" {
			t.Fatalf("after revocation: %d to %q", res.StatusCode, res.Header.Get("Location"))
		}
		if _, _, e := audittest.Last(t, db); !strings.Contains(e, "proxy-no-grant") || !strings.Contains(e, "Patient/demo-walter") {
			t.Errorf("refusal not audited: %s", e)
		}
		_, page := h.get(t, "/?ended=demo-walter")
		if !strings.Contains(page, "You no longer have access to Walter Brooks-Demo&#39;s record.") || strings.Contains(page, "apixaban") {
			t.Error("home does not say the access ended")
		}
		if res, body := h.get(t, "/api/views/home?for=demo-walter"); res.StatusCode != 403 || !strings.Contains(body, "no longer have access") {
			t.Errorf("view after revocation = %d %s", res.StatusCode, body)
		}
		if res, _ := h.get(t, "/account/security"); res.StatusCode != 200 {
			t.Errorf("the caregiver's own session ended: %d", res.StatusCode)
		}
		// A record she never held, and a malformed one.
		if res, _ := h.get(t, "/?for=demo-maria"); res.StatusCode != 303 {
			t.Errorf("someone else's record = %d", res.StatusCode)
		}
		if _, _, e := audittest.Last(t, db); !strings.Contains(e, "proxy-no-grant") || !strings.Contains(e, "Patient/demo-maria") {
			t.Errorf("refusal not audited: %s", e)
		}
		if res, _ := h.get(t, "/visits?for=a%20b"); res.StatusCode != 400 {
			t.Errorf("malformed for = %d", res.StatusCode)
		}
	})
}

// TestParentOfATeenagerAndAChild: Dana holds both children's records and
// chooses between them; Sam is 15, so his sensitive visit is hidden from
// her in pages, views, the timeline and the download, while 8-year-old
// Lily's whole record shows; the switcher moves between them.
func TestParentOfATeenagerAndAChild(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	h := recordHarness(t, db)
	h.account(t, "dana@example.com", identity.Person, "", "")
	h.grant(t, demo.Sam, "dana@example.com", "full")
	h.grant(t, demo.Lily, "dana@example.com", "full")
	h.signIn(t, "dana@example.com")
	res, page := h.get(t, "/")
	if res.StatusCode != 200 || !strings.Contains(page, `href="/?for=demo-sam"`) || !strings.Contains(page, `href="/?for=demo-lily"`) {
		t.Fatalf("Dana's home = %d, does not list both records", res.StatusCode)
	}
	for _, p := range []string{"/visits?for=demo-sam", "/timeline?for=demo-sam", "/summary?for=demo-sam", "/api/views/timeline?for=demo-sam", "/api/views/visits?for=demo-sam"} {
		res, page := h.get(t, p)
		if res.StatusCode != 200 {
			t.Fatalf("GET %s = %d", p, res.StatusCode)
		}
		for _, secret := range []string{"Confidential adolescent visit", "Contraception", "reproductive"} {
			if strings.Contains(page, secret) {
				t.Errorf("GET %s shows Sam's sensitive %q to his parent", p, secret)
			}
		}
	}
	if _, page := h.get(t, "/visits?for=demo-sam"); !strings.Contains(page, `href="/?for=demo-lily"`) || !strings.Contains(page, "Viewing: Sam Lee-Demo") {
		t.Error("Sam's pages do not offer Lily's record")
	}
	if _, page := h.get(t, "/summary?for=demo-lily"); !strings.Contains(page, "Asthma") || !strings.Contains(page, "MMR") {
		t.Error("Lily's whole record does not show")
	}
	h.clock.Add(time.Minute)
	h.post(t, "/signin/verify", url.Values{"code": {totpCode(t, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", h.clock.Now())}}) // step-up
	res, file := h.get(t, "/record/download/fhir?for=demo-sam")
	if res.StatusCode != 200 || !strings.Contains(file, `"Patient"`) {
		t.Fatalf("Sam's download for Dana = %d", res.StatusCode)
	}
	for _, secret := range []string{"demo-sam-visit-confidential", "demo-sam-counseling", "Contraception"} {
		if strings.Contains(file, secret) {
			t.Errorf("Sam's download for his parent holds %q", secret)
		}
	}
}
