package requests_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/demo"
	"carefront/internal/fhir"
	"carefront/internal/requests"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

type told struct {
	mu   sync.Mutex
	sent []string
}

func (t *told) QueuePatientNotice(_ context.Context, _ *sqldb.Tx, patient, event string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sent = append(t.sent, patient+" "+event)
	return nil
}

// staffTold is the clinic's clinicians and the notices queued to them.
type staffTold struct {
	list []requests.Clinician
	mu   sync.Mutex
	sent []string
}

func (s *staffTold) Clinicians(context.Context) ([]requests.Clinician, error) { return s.list, nil }

func (s *staffTold) QueueNotice(_ context.Context, _ *sqldb.Tx, account, event string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, account+" "+event)
	return nil
}

func (s *staffTold) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.sent
	s.sent = nil
	slices.Sort(out)
	return out
}

type fixture struct {
	clock  *sqldbtest.Clock
	s      *requests.Store
	gw     *clinical.Gateway
	st     *store.Store
	told   *told
	maria  clinical.Request
	walter clinical.Request
	patel  clinical.Request
}

func newFixture(t *testing.T, db *sqldb.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	clock := sqldbtest.UseClock(db)
	sig, _ := audit.NewSigner(make([]byte, 32))
	aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test", CheckpointEvery: 100})
	t.Cleanup(func() { aw.Close(ctx) })
	st := store.New(db)
	if _, err := demo.Seed(ctx, st, aw, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := demo.SeedClinic(ctx, st); err != nil {
		t.Fatal(err)
	}
	f := &fixture{clock: clock, st: st, told: &told{}, gw: &clinical.Gateway{Source: st, Audit: aw, Policies: &access.Store{DB: db}, Now: db.Now}}
	f.s = &requests.Store{DB: db, FHIR: st, Audit: aw, Notices: f.told, Now: db.Now}
	f.maria = clinical.Request{Principal: access.Principal{User: "Person/acct-maria", Patient: demo.Maria}}
	f.walter = clinical.Request{Principal: access.Principal{User: "Person/acct-walter", Patient: demo.Walter}}
	f.patel = clinical.Request{Principal: access.Principal{User: "Person/acct-patel", Role: access.RoleClinician, Name: "Anika Patel", Practitioner: "Practitioner/demo-dr-patel"}}
	return f
}

// TestRefillFromRequestToAnswer: Maria asks for a refill to a pharmacy,
// which is remembered; Dr. Patel, who cares for her, finds it in her
// queue, declines it with a reason; Maria sees the status and the reason
// and is told, without PHI, that it was answered.
func TestRefillFromRequestToAnswer(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		phs, err := f.s.Pharmacies(ctx)
		if err != nil || len(phs) != 3 {
			t.Fatalf("pharmacies %v, %v", phs, err)
		}
		r, err := f.s.Ask(ctx, f.gw, f.maria, "acct-maria", "demo-maria-rx-lisinopril", phs[1].ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Kind != requests.Refill || r.Status != requests.Requested || r.Pharmacy != phs[1].Name {
			t.Errorf("request %+v", r)
		}
		if chosen, _ := f.s.Chosen(ctx, demo.Maria); chosen != phs[1].ID {
			t.Errorf("the pharmacy was not remembered: %q", chosen)
		}
		task, err := f.st.Read(ctx, "Task", r.ID)
		if err != nil || !strings.Contains(string(task.Raw), `"reference":"MedicationRequest/demo-maria-rx-lisinopril"`) || !strings.Contains(string(task.Raw), phs[1].ID) {
			t.Fatalf("task %s, %v", task.Raw, err)
		}
		queue, err := f.s.Queue(ctx, f.gw, f.patel, f.gw.CaresFor)
		if err != nil || len(queue) != 1 || queue[0].ID != r.ID || queue[0].What != "lisinopril 10 mg tablet" {
			t.Fatalf("Dr. Patel's queue %+v, %v", queue, err)
		}
		if err := f.s.Answer(ctx, f.gw, f.patel, r.ID, requests.Declined, "", f.gw.CaresFor); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("declined without a reason: %v", err)
		}
		if err := f.s.Answer(ctx, f.gw, f.patel, r.ID, requests.Declined, "We changed your dose at the last visit; a new prescription is on its way.", f.gw.CaresFor); err != nil {
			t.Fatal(err)
		}
		mine, err := f.s.Mine(ctx, f.gw, f.maria)
		if err != nil || len(mine) != 1 || mine[0].Status != requests.Declined || !strings.Contains(mine[0].Reason, "new prescription") {
			t.Fatalf("Maria's requests %+v, %v", mine, err)
		}
		if len(f.told.sent) != 1 || f.told.sent[0] != demo.Maria+" request-answered" {
			t.Errorf("notices %v", f.told.sent)
		}
		if err := f.s.Answer(ctx, f.gw, f.patel, r.ID, requests.Completed, "", f.gw.CaresFor); apperr.CodeOf(err) != apperr.Conflict {
			t.Errorf("answering a finished request: %v", err)
		}
		// A new request for the same medicine is allowed once the last is finished.
		if _, err := f.s.Ask(ctx, f.gw, f.maria, "acct-maria", "demo-maria-rx-lisinopril", phs[0].ID); err != nil {
			t.Errorf("asking again after the answer: %v", err)
		}
	})
}

// TestRefillRefusesBadInput: another patient's medicine, one not taken
// any more, a pharmacy not the clinic's, a second open request, a
// clinician without a care relationship answering: refused, nothing
// changes.
func TestRefillRefusesBadInput(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		stopped := `{"resourceType":"MedicationRequest","id":"demo-maria-rx-old","status":"stopped","intent":"order","subject":{"reference":"Patient/demo-maria"},"medicationCodeableConcept":{"text":"glipizide 5 mg tablet"}}`
		if _, err := f.st.Update(ctx, "MedicationRequest", "demo-maria-rx-old", []byte(stopped), ""); err != nil {
			t.Fatal(err)
		}
		phs, _ := f.s.Pharmacies(ctx)
		if _, err := f.s.Ask(ctx, f.gw, f.maria, "acct-maria", "demo-maria-rx-atorvastatin", phs[0].ID); err != nil {
			t.Fatal(err)
		}
		okay := phs[0].ID
		for name, tc := range map[string]struct {
			req        clinical.Request
			med, pharm string
			code       apperr.Code
		}{
			"another's medicine": {f.walter, "demo-maria-rx-lisinopril", okay, apperr.NotFound},
			"a stopped medicine": {f.maria, "demo-maria-rx-old", okay, apperr.Conflict},
			"no such pharmacy":   {f.maria, "demo-maria-rx-lisinopril", "demo-clinic", apperr.Invalid},
			"a second request":   {f.maria, "demo-maria-rx-atorvastatin", okay, apperr.Conflict},
			"no such medicine":   {f.maria, "nope", okay, apperr.NotFound},
		} {
			if _, err := f.s.Ask(ctx, f.gw, tc.req, "acct", tc.med, tc.pharm); apperr.CodeOf(err) != tc.code {
				t.Errorf("%s: %v (%s), want %s", name, err, apperr.CodeOf(err), tc.code)
			}
		}
		mine, _ := f.s.Mine(ctx, f.gw, f.maria)
		if len(mine) != 1 {
			t.Errorf("%d requests after the refusals, want 1", len(mine))
		}
		okafor := clinical.Request{Principal: access.Principal{User: "Person/acct-okafor", Role: access.RoleClinician, Name: "Chidi Okafor", Practitioner: "Practitioner/demo-dr-okafor"}}
		if q, _ := f.s.Queue(ctx, f.gw, okafor, f.gw.CaresFor); len(q) != 0 {
			t.Errorf("a clinician without a care relationship sees %d requests", len(q))
		}
		if err := f.s.Answer(ctx, f.gw, okafor, mine[0].ID, requests.Completed, "", f.gw.CaresFor); !errors.Is(err, requests.ErrNoRequest) {
			t.Errorf("a clinician without a care relationship answers: %v", err)
		}
	})
}

// TestCorrectionFromRequestToStatement: Maria asks to correct a result;
// it is due in 60 days; Dr. Patel sees the deadline and denies it with a
// reason; Maria adds a statement of disagreement, kept with the
// correction (and on the Task). Bad input is refused with nothing
// changed.
func TestCorrectionFromRequestToStatement(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		const item = "Observation/demo-maria-a1c-12"
		for name, tc := range map[string]struct {
			req                clinical.Request
			ref, wrong, should string
			code               apperr.Code
		}{
			"nothing said":         {f.maria, item, " ", "", apperr.Invalid},
			"too long":             {f.maria, item, strings.Repeat("x", 2001), "", apperr.Invalid},
			"another's item":       {f.walter, item, "Wrong value", "", apperr.NotFound},
			"not a record item":    {f.maria, "Organization/demo-clinic", "Wrong name", "", apperr.NotFound},
			"another's details":    {f.maria, "Patient/demo-walter", "Wrong name", "", apperr.NotFound},
			"a reference of words": {f.maria, "the A1c", "Wrong", "", apperr.NotFound},
		} {
			if _, err := f.s.AskCorrection(ctx, f.gw, tc.req, "acct", tc.ref, tc.wrong, tc.should); apperr.CodeOf(err) != tc.code {
				t.Errorf("%s: %v, want %s", name, err, tc.code)
			}
		}
		r, err := f.s.AskCorrection(ctx, f.gw, f.maria, "acct-maria", item, "This A1c is from another lab's sample", "It should be removed")
		if err != nil {
			t.Fatal(err)
		}
		if r.Due.Sub(r.Created) != requests.CorrectionDue || r.What != "Hemoglobin A1c/Hemoglobin.total in Blood" {
			t.Errorf("correction %+v", r)
		}
		if _, err := f.s.AskCorrection(ctx, f.gw, f.maria, "acct-maria", item, "Again", ""); apperr.CodeOf(err) != apperr.Conflict {
			t.Errorf("a second open correction of one item: %v", err)
		}
		if err := f.s.Disagree(ctx, f.gw, f.maria, r.ID, "I disagree"); apperr.CodeOf(err) != apperr.Conflict {
			t.Errorf("a statement before any denial: %v", err)
		}
		queue, _ := f.s.Queue(ctx, f.gw, f.patel, f.gw.CaresFor)
		if len(queue) != 1 || queue[0].Kind != requests.Correction || !queue[0].Due.Equal(r.Due) {
			t.Fatalf("queue %+v", queue)
		}
		if err := f.s.Answer(ctx, f.gw, f.patel, r.ID, requests.Declined, "The result came from your own sample, checked with the lab.", f.gw.CaresFor); err != nil {
			t.Fatal(err)
		}
		if err := f.s.Disagree(ctx, f.gw, f.walter, r.ID, "Not mine"); !errors.Is(err, requests.ErrNoRequest) {
			t.Errorf("Walter adds a statement to Maria's correction: %v", err)
		}
		if err := f.s.Disagree(ctx, f.gw, f.maria, r.ID, "I gave no sample that day."); err != nil {
			t.Fatal(err)
		}
		mine, err := f.s.Corrections(ctx, f.gw, f.maria)
		if err != nil || len(mine) != 1 || mine[0].Status != requests.Declined || mine[0].Statement != "I gave no sample that day." || !strings.Contains(mine[0].Reason, "checked with the lab") {
			t.Fatalf("Maria's corrections %+v, %v", mine, err)
		}
		task, _ := f.st.Read(ctx, "Task", r.ID)
		if !strings.Contains(string(task.Raw), "Statement of disagreement: I gave no sample that day.") || !strings.Contains(string(task.Raw), `"restriction"`) {
			t.Errorf("task %s", task.Raw)
		}
		obs, _ := f.st.Read(ctx, "Observation", "demo-maria-a1c-12")
		if obs.VersionID != "1" {
			t.Error("the correction changed the result itself")
		}
	})
}

// TestCorrectionDeadlineReminders: the clinicians who care for the
// patient are reminded of an open correction once when 14 days are left
// and once when the deadline has passed, never twice (two runs at once
// send one reminder); an answered correction is not reminded of; a
// correction whose patient nobody with an account cares for is reported
// as unassigned and stays unreminded until someone does.
func TestCorrectionDeadlineReminders(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		patel := requests.Clinician{Account: "acct-patel", Practitioner: "Practitioner/demo-dr-patel"}
		nguyen := requests.Clinician{Account: "acct-nguyen", Practitioner: "Practitioner/demo-dr-nguyen"}
		okafor := requests.Clinician{Account: "acct-okafor", Practitioner: "Practitioner/demo-dr-okafor"}
		clinic := &staffTold{list: []requests.Clinician{patel, nguyen, okafor}}
		mine, err := f.s.AskCorrection(ctx, f.gw, f.maria, "acct-maria", "Observation/demo-maria-a1c-12", "Not my sample", "")
		if err != nil {
			t.Fatal(err)
		}
		walters, err := f.s.AskCorrection(ctx, f.gw, f.walter, "acct-walter", "Condition/demo-walter-oa", "It is my left knee, not the right", "")
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Add(24 * time.Hour)
		answered, err := f.s.AskCorrection(ctx, f.gw, f.maria, "acct-maria", "Condition/demo-maria-htn", "I never had high blood pressure", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.s.Answer(ctx, f.gw, f.patel, answered.ID, requests.Completed, "", f.gw.CaresFor); err != nil {
			t.Fatal(err)
		}
		run := func(staff *staffTold) requests.Reminded {
			t.Helper()
			r, err := f.s.RemindDeadlines(ctx, staff, f.gw.CaresFor)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		if r := run(clinic); r.Corrections != 0 || len(clinic.take()) != 0 {
			t.Errorf("reminders 59 days ahead of the deadline: %+v", r)
		}
		// 14 days left: nobody who cares for them has an account yet.
		f.clock.Add(mine.Due.Sub(f.clock.Now()) - requests.RemindBefore + time.Hour)
		alone := &staffTold{list: []requests.Clinician{okafor}}
		if r := run(alone); r.Corrections != 0 || len(r.Unassigned) != 2 || len(alone.take()) != 0 {
			t.Errorf("with only a clinician who cares for neither: %+v", r)
		}
		r := run(clinic)
		want := []string{"acct-nguyen " + requests.NoticeCorrectionDue, "acct-patel " + requests.NoticeCorrectionDue, "acct-patel " + requests.NoticeCorrectionDue}
		if got := clinic.take(); r.Corrections != 2 || r.Notices != 3 || !slices.Equal(got, want) {
			t.Errorf("14 days left: %+v %v, want %v", r, got, want)
		}
		if r := run(clinic); r.Corrections != 0 || len(clinic.take()) != 0 {
			t.Errorf("a second run reminded again: %+v", r)
		}
		// Walter's is answered; Maria's passes its deadline. Two runs at once
		// remind once.
		if err := f.s.Answer(ctx, f.gw, f.patel, walters.ID, requests.InProgress, "", f.gw.CaresFor); err != nil {
			t.Fatal(err)
		}
		if err := f.s.Answer(ctx, f.gw, f.patel, walters.ID, requests.Completed, "", f.gw.CaresFor); err != nil {
			t.Fatal(err)
		}
		f.clock.Add(requests.RemindBefore)
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() { defer wg.Done(); run(clinic) }()
		}
		wg.Wait()
		want = []string{"acct-nguyen " + requests.NoticeCorrectionOverdue, "acct-patel " + requests.NoticeCorrectionOverdue}
		if got := clinic.take(); !slices.Equal(got, want) {
			t.Errorf("past the deadline: %v, want %v", got, want)
		}
		if r := run(clinic); r.Corrections != 0 || len(clinic.take()) != 0 {
			t.Errorf("reminded again after the deadline: %+v", r)
		}
	})
}

// TestRenewalWhenNoRefillsAreLeft: a medicine whose refills are all used
// (one repeat allowed, filled twice) is offered as a renewal, and asking
// makes a renewal request; one with a refill left is a refill.
func TestRenewalWhenNoRefillsAreLeft(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		b := &fhir.Bundle{ResourceType: "Bundle", Type: "transaction"}
		for _, raw := range []string{
			`{"resourceType":"MedicationRequest","id":"rx-used-up","status":"active","intent":"order","subject":{"reference":"Patient/` + demo.Maria + `"},
				"medicationCodeableConcept":{"text":"amlodipine 5 mg tablet"},"dispenseRequest":{"numberOfRepeatsAllowed":1}}`,
			`{"resourceType":"MedicationDispense","id":"fill-1","status":"completed","subject":{"reference":"Patient/` + demo.Maria + `"},
				"medicationCodeableConcept":{"text":"amlodipine 5 mg tablet"},"authorizingPrescription":[{"reference":"MedicationRequest/rx-used-up"}]}`,
			`{"resourceType":"MedicationDispense","id":"fill-2","status":"completed","subject":{"reference":"Patient/` + demo.Maria + `"},
				"medicationCodeableConcept":{"text":"amlodipine 5 mg tablet"},"authorizingPrescription":[{"reference":"MedicationRequest/rx-used-up"}]}`,
		} {
			var head struct{ ResourceType, ID string }
			json.Unmarshal([]byte(raw), &head)
			b.Entry = append(b.Entry, &fhir.Entry{Resource: json.RawMessage(raw), Request: &fhir.EntryRequest{Method: "PUT", URL: head.ResourceType + "/" + head.ID}})
		}
		if _, err := f.st.Process(ctx, b, store.BundleOptions{}); err != nil {
			t.Fatal(err)
		}
		m, err := f.s.Medicine(ctx, f.gw, f.maria, "rx-used-up")
		if err != nil || m.Kind != requests.Renewal || m.RefillsLeft != 0 {
			t.Fatalf("the used-up medicine: %+v, %v; want a renewal with no refills left", m, err)
		}
		if m, err := f.s.Medicine(ctx, f.gw, f.maria, "demo-maria-rx-lisinopril"); err != nil || m.Kind != requests.Refill {
			t.Errorf("lisinopril: %+v, %v; want a refill", m, err)
		}
		phs, _ := f.s.Pharmacies(ctx)
		r, err := f.s.Ask(ctx, f.gw, f.maria, "acct-maria", "rx-used-up", phs[0].ID)
		if err != nil || r.Kind != requests.Renewal {
			t.Fatalf("asking: %+v, %v; want a renewal request", r, err)
		}
	})
}
