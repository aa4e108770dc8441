package web

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"carefront/internal/audit/audittest"
	"carefront/internal/consent"
	"carefront/internal/demo"
	"carefront/internal/identity"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

var inviteLink = regexp.MustCompile(`https://\S+/caregiver/accept\?code=([0-9a-f]{64})`)

// TestPatientInvitesACaregiver: Walter invites Linda to see his medicines
// and visits; bad invitations are refused with the reason and write
// nothing; the invitation is mailed (nothing of Walter's in it); Linda
// accepts with her account and sees his medicines; Walter stops it from
// the sharing page and her next request is refused.
func TestPatientInvitesACaregiver(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := recordHarness(t, db)
		h.account(t, "walter@example.com", identity.Person, demo.Walter, "")
		h.account(t, "linda@example.com", identity.Person, "", "")
		h.signIn(t, "walter@example.com")
		if res, page := h.get(t, "/sharing"); res.StatusCode != 200 || !strings.Contains(page, "You have not shared your record with anyone.") {
			t.Fatalf("sharing page = %d", res.StatusCode)
		}
		if res, page := h.get(t, "/sharing/caregivers/new"); res.StatusCode != 200 || !strings.Contains(page, `name="preset"`) {
			t.Fatalf("invite form = %d", res.StatusCode)
		}
		gs := &consent.Grants{DB: db}
		before := audittest.Count(t, db)
		until := h.clock.Now().AddDate(1, 0, 0).Format("2006-01-02")
		for _, bad := range []url.Values{
			{"email": {"walter@example.com"}, "preset": {"full"}, "until": {until}},                      // himself
			{"email": {"linda@example.com"}, "preset": {"full"}, "until": {"2020-01-01"}},                // past
			{"email": {"linda@example.com"}, "preset": {"full"}, "until": {"2040-01-01"}},                // over ten years
			{"email": {"linda@example.com"}, "preset": {"custom"}, "kind": {"x-rays"}, "until": {until}}, // no such kind
			{"email": {"linda@example.com"}, "preset": {"custom"}, "until": {until}},                     // nothing chosen
			{"email": {"linda"}, "preset": {"full"}, "until": {until}},                                   // not an address
			{"email": {"linda@example.com"}, "preset": {"everything"}, "until": {until}},                 // no such preset
			{"email": {"linda@example.com"}, "preset": {"full"}, "until": {"next year"}},                 // not a date
		} {
			res, page := h.post(t, "/sharing/caregivers/new", bad)
			if res.StatusCode != 422 || !strings.Contains(page, "usa-alert--error") && !strings.Contains(page, "usa-error-message") {
				t.Errorf("invite %v = %d, want 422 with the reason", bad, res.StatusCode)
			}
		}
		refused := 0
		for _, e := range audittest.Events(t, db) {
			if strings.Contains(e, "proxy-grant-refused") && strings.Contains(e, "Patient/demo-walter") {
				refused++
			}
		}
		if l, _ := gs.List(context.Background(), demo.Walter); len(l) != 0 || refused != 7 || audittest.Count(t, db) != before+7 {
			t.Fatalf("refused invitations wrote %d grants, %d audit records (%d refusals), want none and 7", len(l), audittest.Count(t, db)-before, refused)
		}
		if len(h.mail(t)) != 0 {
			t.Fatal("a refused invitation was mailed")
		}
		res, _ := h.post(t, "/sharing/caregivers/new", url.Values{"email": {"Linda@Example.com"}, "preset": {"medications-visits"}, "until": {until}})
		if res.StatusCode != 303 || res.Header.Get("Location") != "/sharing?done=invited" {
			t.Fatalf("invite = %d to %s", res.StatusCode, res.Header.Get("Location"))
		}
		m := h.mailWith(t, "invited you")
		if m.To != "linda@example.com" || strings.Contains(m.Text, "Walter") || strings.Contains(m.Subject, "Walter") {
			t.Errorf("invitation to %q names the patient or goes astray: %s", m.To, m.Text)
		}
		code := inviteLink.FindStringSubmatch(m.Text)
		if code == nil {
			t.Fatalf("no link in the invitation: %s", m.Text)
		}
		if _, page := h.get(t, "/sharing"); !strings.Contains(page, "waiting for them to accept") || !strings.Contains(page, "Medicines") {
			t.Error("the sharing page does not show the waiting invitation")
		}
		h.post(t, "/signout", nil)

		// Linda, signed in with her own account, accepts.
		h.signIn(t, "linda@example.com")
		if res, page := h.get(t, "/caregiver/accept?code="+code[1]); res.StatusCode != 200 || !strings.Contains(page, "Walter Brooks-Demo invited you") {
			t.Fatalf("accept page = %d", res.StatusCode)
		}
		if res, _ := h.get(t, "/caregiver/accept?code="+strings.Repeat("0", 64)); res.StatusCode != 404 {
			t.Errorf("a made-up link = %d", res.StatusCode)
		}
		res, _ = h.post(t, "/caregiver/accept", url.Values{"code": {code[1]}})
		if res.StatusCode != 303 || res.Header.Get("Location") != "/?for=demo-walter" {
			t.Fatalf("accept = %d to %s", res.StatusCode, res.Header.Get("Location"))
		}
		if res, _ := h.post(t, "/caregiver/accept", url.Values{"code": {code[1]}}); res.StatusCode != 404 {
			t.Errorf("a link used twice = %d", res.StatusCode)
		}
		if res, page := h.get(t, "/medications?for=demo-walter"); res.StatusCode != 200 || !strings.Contains(page, "apixaban") {
			t.Fatalf("Linda's view of Walter's medicines = %d", res.StatusCode)
		}
		// A caregiver never invites further caregivers.
		for _, p := range []string{"/sharing/caregivers/new", "/sharing/caregivers/new?for=demo-walter"} {
			if res, _ := h.get(t, p); res.StatusCode != 403 && res.StatusCode != 303 {
				t.Errorf("GET %s as a caregiver = %d", p, res.StatusCode)
			}
		}
		if res, _ := h.post(t, "/sharing/caregivers/new", url.Values{"for": {"demo-walter"}, "email": {"x@example.com"}, "preset": {"full"}, "until": {until}}); res.StatusCode != 403 {
			t.Errorf("caregiver invites = %d", res.StatusCode)
		}
		if _, _, e := audittest.Last(t, db); !strings.Contains(e, "caregiver-not-permitted") {
			t.Errorf("a caregiver's invitation is not audited: %s", e)
		}
		if l, _ := gs.List(context.Background(), demo.Walter); len(l) != 1 {
			t.Error("a caregiver's invitation changed something")
		}
		h.post(t, "/signout", nil)

		// Walter stops it; Linda's next request is refused.
		h.signIn(t, "walter@example.com")
		_, page := h.get(t, "/sharing")
		id := regexp.MustCompile(`name="grant" value="([^"]+)"`).FindStringSubmatch(page)
		if id == nil || !strings.Contains(page, "Can see your record now") {
			t.Fatal("the accepted grant is not on Walter's sharing page")
		}
		if res, _ := h.post(t, "/sharing/caregivers/revoke", url.Values{"grant": {"grant-someone-elses"}}); res.StatusCode != 404 {
			t.Errorf("revoking a grant that is not his = %d", res.StatusCode)
		}
		if _, _, e := audittest.Last(t, db); !strings.Contains(e, "proxy-revoke-refused") {
			t.Errorf("a refused revocation is not audited: %s", e)
		}
		if res, _ := h.post(t, "/sharing/caregivers/revoke", url.Values{"grant": {id[1]}}); res.StatusCode != 303 {
			t.Fatalf("revoke = %d", res.StatusCode)
		}
		if _, page := h.get(t, "/sharing?done=revoked"); !strings.Contains(page, "Earlier sharing") || !strings.Contains(page, "Stopped") {
			t.Error("the revoked grant is not in the history")
		}
		h.post(t, "/signout", nil)
		h.signIn(t, "linda@example.com")
		if res, _ := h.get(t, "/medications?for=demo-walter"); res.StatusCode != 303 || res.Header.Get("Location") != "/?ended=demo-walter" {
			t.Errorf("after Walter stopped it: %d to %s", res.StatusCode, res.Header.Get("Location"))
		}
		// Each side was told, without naming anyone or anything of the record.
		for subject, to := range map[string]string{"You invited someone": "walter@example.com", "can now see your carefront record": "walter@example.com",
			"Your access to a record in carefront has ended": "linda@example.com"} {
			m := h.mailWith(t, subject)
			if m.To != to {
				t.Errorf("%q went to %s, want %s", subject, m.To, to)
			}
			for _, phi := range []string{"Walter", "Brooks", "Linda", "apixaban", "demo-walter"} {
				if strings.Contains(m.Subject+m.Text, phi) {
					t.Errorf("%q names %q", subject, phi)
				}
			}
		}
	})
}

// TestInvitedCaregiverCreatesAnAccount: someone with no account opens
// the link, creates an account for the invited address (proven by the
// link), and is sent to set up a second factor; the grant is theirs.
func TestInvitedCaregiverCreatesAnAccount(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	h := recordHarness(t, db)
	h.account(t, "walter@example.com", identity.Person, demo.Walter, "")
	h.signIn(t, "walter@example.com")
	until := h.clock.Now().AddDate(0, 6, 0).Format("2006-01-02")
	if res, _ := h.post(t, "/sharing/caregivers/new", url.Values{"email": {"newcomer@example.com"}, "preset": {"custom"}, "kind": {"medications", "results"}, "until": {until}}); res.StatusCode != 303 {
		t.Fatalf("invite = %d", res.StatusCode)
	}
	code := inviteLink.FindStringSubmatch(h.mailWith(t, "invited you").Text)
	h.post(t, "/signout", nil)
	if res, page := h.get(t, "/caregiver/accept?code="+code[1]); res.StatusCode != 200 || !strings.Contains(page, "newcomer@example.com") || !strings.Contains(page, "Test results") {
		t.Fatalf("accept page signed out = %d", res.StatusCode)
	}
	if res, _ := h.post(t, "/caregiver/accept", url.Values{"code": {code[1]}, "password": {"short"}, "password2": {"short"}}); res.StatusCode != 422 {
		t.Errorf("a weak password = %d", res.StatusCode)
	}
	if _, err := h.store.AccountByEmail(context.Background(), "newcomer@example.com"); err == nil {
		t.Fatal("a refused form created an account")
	}
	res, _ := h.post(t, "/caregiver/accept", url.Values{"code": {code[1]}, "password": {"a long enough passphrase"}, "password2": {"a long enough passphrase"}})
	if res.StatusCode != 303 || res.Header.Get("Location") != "/mfa/setup" {
		t.Fatalf("create and accept = %d to %s", res.StatusCode, res.Header.Get("Location"))
	}
	a, err := h.store.AccountByEmail(context.Background(), "newcomer@example.com")
	if err != nil || a.EmailVerified.IsZero() || a.PatientID != "" {
		t.Fatalf("new account %+v, %v", a, err)
	}
	gs, _ := (&consent.Grants{DB: db}).ForCaregiver(context.Background(), a.ID)
	if len(gs) != 1 || gs[0].Patient != demo.Walter || gs[0].Pending() {
		t.Errorf("the grant is not the new account's: %+v", gs)
	}
	// Until the second factor is set up, nothing of Walter's shows.
	if res, _ := h.get(t, "/medications?for=demo-walter"); res.StatusCode != 303 || strings.Contains(res.Header.Get("Location"), "for=") {
		t.Errorf("one factor reaches the record: %d to %s", res.StatusCode, res.Header.Get("Location"))
	}
}

// TestCaregiverGivesUpAccess: Dana gives up her access to Lily's record
// from her sharing page; Sam's stays.
func TestCaregiverGivesUpAccess(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	h := recordHarness(t, db)
	h.account(t, "dana@example.com", identity.Person, "", "")
	h.grant(t, demo.Sam, "dana@example.com", "full")
	lily := h.grant(t, demo.Lily, "dana@example.com", "full")
	h.signIn(t, "dana@example.com")
	if _, page := h.get(t, "/sharing"); !strings.Contains(page, "Records shared with you") || !strings.Contains(page, "Lily Lee-Demo") {
		t.Fatal("Dana's sharing page does not list the records she holds")
	}
	if res, _ := h.post(t, "/sharing/held/leave", url.Values{"grant": {lily.ID}}); res.StatusCode != 303 {
		t.Fatalf("leave = %d", res.StatusCode)
	}
	if res, _ := h.get(t, "/summary?for=demo-lily"); res.StatusCode != 303 {
		t.Errorf("Lily's record after giving it up = %d", res.StatusCode)
	}
	if res, _ := h.get(t, "/summary?for=demo-sam"); res.StatusCode != 200 {
		t.Errorf("Sam's record after giving up Lily's = %d", res.StatusCode)
	}
}

// TestNeverShareKeepsRecordsBack: Walter shares everything with Linda
// but never his alcohol and drug use: his AUDIT-C result stays out of
// her pages, views and download, while the rest shows; the sharing page
// says what is kept back. A caregiver with medicines and visits only
// downloads what the grant covers.
func TestNeverShareKeepsRecordsBack(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	h := recordHarness(t, db)
	h.account(t, "walter@example.com", identity.Person, demo.Walter, "")
	h.account(t, "linda@example.com", identity.Person, "", "")
	h.account(t, "dana@example.com", identity.Person, "", "")
	h.grant(t, demo.Walter, "dana@example.com", "medications-visits")
	h.signIn(t, "walter@example.com")
	until := h.clock.Now().AddDate(1, 0, 0).Format("2006-01-02")
	if res, _ := h.post(t, "/sharing/caregivers/new", url.Values{"email": {"linda@example.com"}, "preset": {"full"}, "never": {"substance-use"}, "until": {until}}); res.StatusCode != 303 {
		t.Fatalf("invite = %d", res.StatusCode)
	}
	if _, page := h.get(t, "/sharing"); !strings.Contains(page, "Never: Alcohol and drug use") {
		t.Error("the sharing page does not say what is kept back")
	}
	code := inviteLink.FindStringSubmatch(h.mailWith(t, "invited you").Text)
	h.post(t, "/signout", nil)
	h.signIn(t, "linda@example.com")
	if res, _ := h.post(t, "/caregiver/accept", url.Values{"code": {code[1]}}); res.StatusCode != 303 {
		t.Fatalf("accept = %d", res.StatusCode)
	}
	for _, p := range []string{"/results?for=demo-walter", "/timeline?for=demo-walter", "/api/views/timeline?for=demo-walter", "/summary?for=demo-walter"} {
		res, page := h.get(t, p)
		if res.StatusCode != 200 {
			t.Fatalf("GET %s = %d", p, res.StatusCode)
		}
		if strings.Contains(page, "AUDIT") || strings.Contains(page, "75626-2") {
			t.Errorf("GET %s shows the never-shared result", p)
		}
	}
	if _, page := h.get(t, "/summary?for=demo-walter"); !strings.Contains(page, "Atrial fibrillation") {
		t.Error("the rest of Walter's record does not show")
	}
	h.clock.Add(time.Minute)
	h.post(t, "/signin/verify", url.Values{"code": {totpCode(t, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", h.clock.Now())}})
	res, file := h.get(t, "/record/download/fhir?for=demo-walter")
	if res.StatusCode != 200 || strings.Contains(file, "demo-walter-auditc") || !strings.Contains(file, "demo-walter-afib") {
		t.Errorf("Linda's download = %d, holds the AUDIT-C %v", res.StatusCode, strings.Contains(file, "demo-walter-auditc"))
	}
	if strings.Contains(file, `"Consent"`) || strings.Contains(file, "dana@example.com") {
		t.Error("a caregiver's download holds the patient's consents or another caregiver")
	}
	h.post(t, "/signout", nil)
	h.signIn(t, "dana@example.com")
	h.clock.Add(time.Minute)
	h.post(t, "/signin/verify", url.Values{"code": {totpCode(t, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", h.clock.Now())}})
	res, file = h.get(t, "/record/download/fhir?for=demo-walter")
	if res.StatusCode != 200 || !strings.Contains(file, "apixaban") || strings.Contains(file, `"Observation"`) || strings.Contains(file, `"Condition"`) {
		t.Errorf("a medicines-and-visits caregiver's download = %d, or holds more than the grant", res.StatusCode)
	}
}
