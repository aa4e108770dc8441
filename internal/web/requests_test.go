package web

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"carefront/internal/clinical/store"
	"carefront/internal/demo"
	"carefront/internal/identity"
	"carefront/internal/requests"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// TestRefillRequestPages: Maria asks for a refill from /medications,
// choosing a pharmacy (bad input refused beside its field, a second
// request for the same medicine refused); Dr. Patel answers from her
// queue (declining needs a reason); Maria sees the status and the reason,
// and is told without PHI. Walter gets 404 for Maria's medicine.
func TestRefillRequestPages(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := newAuthHarness(t, db, withRecords(t, db), func(o *Options) {
			o.Requests = &requests.Store{DB: db, FHIR: store.New(db), Audit: o.Auth.Audit, Notices: o.Auth, Now: db.Now}
		})
		if err := demo.SeedClinic(context.Background(), store.New(db)); err != nil {
			t.Fatal(err)
		}
		h.account(t, "maria@example.com", identity.Person, demo.Maria, "")
		h.account(t, "walter@example.com", identity.Person, demo.Walter, "")
		h.staff(t, "patel@clinic.example", "clinician", "Anika Patel", "demo-dr-patel")
		h.signIn(t, "maria@example.com")
		_, page := h.get(t, "/medications")
		if !strings.Contains(page, `href="/medications/demo-maria-rx-lisinopril/refill"`) {
			t.Fatal("no refill link on the medications page")
		}
		_, page = h.get(t, "/medications/demo-maria-rx-lisinopril/refill")
		if !strings.Contains(page, "Main Street Pharmacy (demo)") || !strings.Contains(page, "refills left") {
			t.Fatalf("refill form:\n%s", page)
		}
		if res, page := h.post(t, "/medications/demo-maria-rx-lisinopril/refill", url.Values{"pharmacy": {"demo-clinic"}}); res.StatusCode != 422 || !strings.Contains(page, `id="pharmacy-error"`) {
			t.Errorf("a pharmacy not offered: %d", res.StatusCode)
		}
		res, _ := h.post(t, "/medications/demo-maria-rx-lisinopril/refill", url.Values{"pharmacy": {"demo-pharmacy-2"}})
		if res.StatusCode != 303 || res.Header.Get("Location") != "/medications?done=refill" {
			t.Fatalf("asking: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		if res, page := h.post(t, "/medications/demo-maria-rx-lisinopril/refill", url.Values{"pharmacy": {"demo-pharmacy-2"}}); res.StatusCode != 409 || !strings.Contains(page, "You asked for this medicine already") {
			t.Errorf("a second request: %d", res.StatusCode)
		}
		_, page = h.get(t, "/medications?done=refill")
		if !strings.Contains(page, "Your request was sent") || !strings.Contains(page, "Requested") || !strings.Contains(page, "Riverside Drugs (demo)") {
			t.Error("the medications page does not show the request")
		}
		if _, page := h.get(t, "/medications/demo-maria-rx-atorvastatin/refill"); !strings.Contains(page, `value="demo-pharmacy-2" checked`) {
			t.Error("the pharmacy chosen is not remembered")
		}
		w := h.fresh()
		w.signIn(t, "walter@example.com")
		if res, _ := w.get(t, "/medications/demo-maria-rx-lisinopril/refill"); res.StatusCode != 404 {
			t.Errorf("Walter opens Maria's medicine: %d", res.StatusCode)
		}
		if res, _ := w.post(t, "/medications/demo-maria-rx-lisinopril/refill", url.Values{"pharmacy": {"demo-pharmacy-1"}}); res.StatusCode != 404 {
			t.Errorf("Walter asks for Maria's medicine: %d", res.StatusCode)
		}

		staff := h.fresh()
		staff.signIn(t, "patel@clinic.example")
		_, page = staff.get(t, "/staff/requests")
		if !strings.Contains(page, "Refill: lisinopril 10 mg tablet") || !strings.Contains(page, ">Maria Ortega-Demo</a>, born ") {
			t.Fatalf("the queue:\n%s", page)
		}
		id := strings.Split(strings.Split(page, `action="/staff/requests/`)[1], `"`)[0]
		if res, page := staff.post(t, "/staff/requests/"+id, url.Values{"status": {"rejected"}}); res.StatusCode != 422 || !strings.Contains(page, "Say why") {
			t.Errorf("declining without a reason: %d", res.StatusCode)
		}
		if res, _ := staff.post(t, "/staff/requests/"+id, url.Values{"status": {"rejected"}, "reason": {"Your dose changed; a new prescription is on its way."}}); res.StatusCode != 303 {
			t.Fatalf("declining: %d", res.StatusCode)
		}
		_, page = h.get(t, "/medications")
		if !strings.Contains(page, "Declined") || !strings.Contains(page, "a new prescription is on its way") {
			t.Error("Maria does not see the answer")
		}
		m := h.mailWith(t, "answered a request")
		if strings.Contains(m.Text, "lisinopril") || strings.Contains(m.Text, "Patel") {
			t.Errorf("the notice carries PHI: %s", m.Text)
		}
	})
}

// TestCorrectionPages: Maria asks to correct a result from /results
// (bad input beside its field); Walter gets 404 for her result; Dr. Patel
// sees what Maria wrote and the deadline, and denies it with a reason;
// Maria reads the answer and adds a statement of disagreement.
func TestCorrectionPages(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := newAuthHarness(t, db, withRecords(t, db), func(o *Options) {
			o.Requests = &requests.Store{DB: db, FHIR: store.New(db), Audit: o.Auth.Audit, Notices: o.Auth, Now: db.Now}
		})
		h.account(t, "maria@example.com", identity.Person, demo.Maria, "")
		h.account(t, "walter@example.com", identity.Person, demo.Walter, "")
		h.staff(t, "patel@clinic.example", "clinician", "Anika Patel", "demo-dr-patel")
		h.signIn(t, "maria@example.com")
		const item = "/corrections/new?item=Observation/demo-maria-a1c-12"
		if _, page := h.get(t, "/results"); !strings.Contains(page, `href="`+item+`"`) {
			t.Fatal("no correction link on the results page")
		}
		// A past visit and a document can be asked to be corrected too.
		for page, link := range map[string]string{
			"/visits":                               "/corrections/new?item=Encounter/demo-maria-visit-6",
			"/documents/demo-maria-visit-6-summary": "/corrections/new?item=DocumentReference/demo-maria-visit-6-summary",
		} {
			if _, body := h.get(t, page); !strings.Contains(body, `href="`+link+`"`) {
				t.Errorf("no correction link to %s on %s", link, page)
			}
			if res, body := h.get(t, link); res.StatusCode != 200 || !strings.Contains(body, "What is wrong?") {
				t.Errorf("GET %s: %d", link, res.StatusCode)
			}
		}
		_, page := h.get(t, item)
		if !strings.Contains(page, "Hemoglobin A1c") || !strings.Contains(page, "What is wrong?") {
			t.Fatalf("correction form:\n%s", page)
		}
		if res, page := h.post(t, item, url.Values{"wrong": {""}}); res.StatusCode != 422 || !strings.Contains(page, `id="wrong-error"`) {
			t.Errorf("nothing said: %d", res.StatusCode)
		}
		res, _ := h.post(t, item, url.Values{"wrong": {"This A1c is not mine"}, "should": {"Remove it"}})
		if res.StatusCode != 303 || res.Header.Get("Location") != "/corrections?done=sent" {
			t.Fatalf("asking: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		if _, page := h.get(t, "/corrections?done=sent"); !strings.Contains(page, "Requested") || !strings.Contains(page, "answer due by January 22, 2027") {
			t.Errorf("the corrections page:\n%s", page)
		}
		w := h.fresh()
		w.signIn(t, "walter@example.com")
		if res, _ := w.get(t, item); res.StatusCode != 404 {
			t.Errorf("Walter opens a correction of Maria's result: %d", res.StatusCode)
		}

		staff := h.fresh()
		staff.signIn(t, "patel@clinic.example")
		_, page = staff.get(t, "/staff/requests")
		if !strings.Contains(page, "Correction of the record") || !strings.Contains(page, "What is wrong: This A1c is not mine") || !strings.Contains(page, "Answer due by") {
			t.Fatalf("the queue:\n%s", page)
		}
		id := strings.Split(strings.Split(page, `action="/staff/requests/`)[1], `"`)[0]
		if res, _ := staff.post(t, "/staff/requests/"+id, url.Values{"status": {"rejected"}, "reason": {"The lab confirmed the sample was yours."}}); res.StatusCode != 303 {
			t.Fatalf("denying: %d", res.StatusCode)
		}
		_, page = h.get(t, "/corrections")
		if !strings.Contains(page, "Not accepted") || !strings.Contains(page, "The lab confirmed") || !strings.Contains(page, "Add a statement of disagreement") {
			t.Fatalf("after the denial:\n%s", page)
		}
		if res, _ := h.post(t, "/corrections/"+id+"/statement", url.Values{"statement": {" "}}); res.StatusCode != 422 {
			t.Errorf("an empty statement: %d", res.StatusCode)
		}
		if res, _ := w.post(t, "/corrections/"+id+"/statement", url.Values{"statement": {"Not mine"}}); res.StatusCode != 404 {
			t.Errorf("Walter adds a statement to Maria's correction: %d", res.StatusCode)
		}
		if res, _ := h.post(t, "/corrections/"+id+"/statement", url.Values{"statement": {"I gave no sample that day."}}); res.StatusCode != 303 {
			t.Fatalf("the statement: %d", res.StatusCode)
		}
		if _, page := h.get(t, "/corrections"); !strings.Contains(page, "Your statement of disagreement:</span> I gave no sample that day.") {
			t.Error("the statement is not shown")
		}
		// Kept with the item: asking about it again shows the earlier
		// answer and the statement.
		if _, page := h.get(t, item); !strings.Contains(page, "Asked before about this item") || !strings.Contains(page, "The lab confirmed") ||
			!strings.Contains(page, "I gave no sample that day.") {
			t.Error("the item's correction page does not show the earlier answer and statement")
		}
	})
}
