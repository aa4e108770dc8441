package checkin_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/appointments"
	"carefront/internal/audit"
	"carefront/internal/audit/audittest"
	"carefront/internal/checkin"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/demo"
	"carefront/internal/questionnaire"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

type fixture struct {
	s     *checkin.Store
	gw    *clinical.Gateway
	st    *store.Store
	maria clinical.Request
	visit *appointments.Appointment
}

// newFixture: the demo population, its clinic's time and check-in data;
// Maria has booked a follow-up three days ahead, on a clock at Monday
// 2026-11-23 10:00 UTC.
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
	if _, err := demo.SeedSlots(ctx, st, clock.Now(), time.UTC); err != nil {
		t.Fatal(err)
	}
	if err := demo.SeedClinic(ctx, st); err != nil {
		t.Fatal(err)
	}
	forms, err := checkin.ParseForms(demo.CheckInForms)
	if err != nil {
		t.Fatal(err)
	}
	gw := &clinical.Gateway{Source: st, Audit: aw, Policies: &access.Store{DB: db}, Now: db.Now}
	as := &appointments.Store{DB: db, FHIR: st, Audit: aw, Now: db.Now}
	f := &fixture{s: &checkin.Store{DB: db, FHIR: st, Audit: aw, Appointments: as, Forms: forms, Now: db.Now}, gw: gw, st: st,
		maria: clinical.Request{Principal: access.Principal{User: "Person/acct-maria", Patient: demo.Maria}}}
	slots, err := as.Free(ctx, appointments.Filter{Clinician: "demo-dr-patel", Type: "follow-up", From: clock.Now().AddDate(0, 0, 3)})
	if err != nil || len(slots) == 0 {
		t.Fatalf("no slot: %v", err)
	}
	if f.visit, err = as.Book(ctx, gw, f.maria, appointments.Author{Account: "acct-maria"}, slots[0].ID, ""); err != nil {
		t.Fatal(err)
	}
	return f
}

func good() checkin.Submission {
	return checkin.Submission{ContactOK: "yes", CoverageOK: "yes",
		Medicines: map[string]string{}, Allergies: map[string]string{"demo-maria-allergy-penicillin": "yes"},
		Answers: questionnaire.Answers{Values: map[string]string{"topics": "My sugar after lunch", "pain": "false"}, Other: map[string]string{}}}
}

// TestCheckInKeepsAnswersAndReportsChanges: the sheet shows Maria's
// contact details, insurance, medicines, allergy and the follow-up form;
// her answers become a QuestionnaireResponse naming the visit, and the
// medicine she stopped becomes a Task for the care team, while the
// record's MedicationRequest stays as it was.
func TestCheckInKeepsAnswersAndReportsChanges(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		sh, err := f.s.Open(ctx, f.gw, f.maria, f.visit.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(sh.Phones) == 0 || len(sh.Emails) == 0 || len(sh.Address) == 0 || len(sh.Coverage) != 1 || !strings.Contains(sh.Coverage[0], "Gold PPO") ||
			len(sh.Medicines) == 0 || len(sh.Allergies) != 1 || sh.Form == nil || sh.Form.ID != "demo-previsit-followup" || !sh.Done.IsZero() {
			t.Fatalf("sheet %+v", sh)
		}
		for _, m := range sh.Medicines {
			if m.Name == "?" || m.Name == "" {
				t.Errorf("medicine %s has no name", m.ID)
			}
		}
		sub := good()
		stopped := sh.Medicines[0]
		for _, m := range sh.Medicines {
			sub.Medicines[m.ID] = "yes"
		}
		sub.Medicines[stopped.ID] = "no"
		if err := f.s.Submit(ctx, f.gw, f.maria, "acct-maria", f.visit.ID, sub); err != nil {
			t.Fatal(err)
		}
		done, err := f.s.CheckedIn(ctx, []string{f.visit.ID, "other"})
		if err != nil || done[f.visit.ID].IsZero() || len(done) != 1 {
			t.Fatalf("CheckedIn = %v, %v", done, err)
		}
		var resp, task string
		db.ReadOne(ctx, func(tx *sqldb.Tx) error {
			return tx.QueryRow(ctx, "SELECT response_id, task_id FROM visit_checkin WHERE appointment_id = ?", f.visit.ID).Scan(&resp, &task)
		})
		qr, err := f.st.Read(ctx, "QuestionnaireResponse", resp)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"valueString":"My sugar after lunch"`, `"reference":"Appointment/` + f.visit.ID, `"questionnaire":"https://carefront.example/demo/Questionnaire/previsit-followup"`, `"valueBoolean":false`} {
			if !strings.Contains(string(qr.Raw), want) {
				t.Errorf("the response lacks %s", want)
			}
		}
		tk, err := f.st.Read(ctx, "Task", task)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(tk.Raw), "No longer taking: "+stopped.Name) || !strings.Contains(string(tk.Raw), `"status":"requested"`) {
			t.Errorf("task %s", tk.Raw)
		}
		med, _ := f.st.Read(ctx, "MedicationRequest", stopped.ID)
		if !strings.Contains(string(med.Raw), `"status":"active"`) {
			t.Error("what the patient reported changed the record")
		}
		events := strings.Join(audittest.Events(t, db), "\n")
		if !strings.Contains(events, `"reference":"QuestionnaireResponse/`+resp) || !strings.Contains(events, `"reference":"Task/`+task) {
			t.Error("the check-in is not in the audit trail")
		}
	})
}

// TestCheckInRefusesBadInput: answers of the wrong type, out of range or
// missing, and unanswered confirmations are each named, and nothing is
// written; a visit too far ahead, or another patient's, cannot be checked
// in.
func TestCheckInRefusesBadInput(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		sub := good()
		sub.ContactOK = ""
		sub.CoverageOK = "no" // without saying what changed
		sub.Answers.Values["pain"] = "true"
		sub.Answers.Values["pain-level"] = "eleven"
		sub.Answers.Values["sugar"] = "900"
		sub.Answers.Values["topics"] = ""
		err := f.s.Submit(ctx, f.gw, f.maria, "acct-maria", f.visit.ID, sub)
		if apperr.CodeOf(err) != apperr.Invalid {
			t.Fatalf("err = %v", err)
		}
		got := map[string]string{}
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var ie *apperr.FieldError
			if errors.As(e, &ie) {
				got[ie.Field] = strings.TrimPrefix(ie.Key, "checkin.")
			}
		}
		for field, code := range map[string]string{"contact-ok": "choose", "coverage-changes": "say-what", "q-pain-level": "not-integer", "q-sugar": "above-max", "q-topics": "required"} {
			if got[field] != code {
				t.Errorf("%s: %q, want %q (all: %v)", field, got[field], code, got)
			}
		}
		var n int
		db.ReadOne(ctx, func(tx *sqldb.Tx) error { return tx.QueryRow(ctx, "SELECT COUNT(*) FROM visit_checkin").Scan(&n) })
		if n != 0 {
			t.Error("a refused check-in was recorded")
		}
		walter := clinical.Request{Principal: access.Principal{User: "Person/acct-walter", Patient: demo.Walter}}
		if _, err := f.s.Open(ctx, f.gw, walter, f.visit.ID); apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("Walter opens Maria's check-in: %v", err)
		}
		if _, err := f.s.Open(ctx, f.gw, f.maria, "demo-maria-appt-clinic"); !errors.Is(err, checkin.ErrNotOpen) {
			t.Errorf("a visit ten days ahead: %v, want ErrNotOpen", err)
		}
	})
}
