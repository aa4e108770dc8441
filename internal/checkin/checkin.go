// Package checkin is eCheck-in before a visit, from seven days before it
// until it starts: the patient (or a caregiver whose grant covers visits)
// confirms their contact details, insurance, medicines and allergies, and
// fills in the visit's pre-visit Questionnaire, chosen by the visit's kind
// from the clinic's map.
//
// What the patient reports never changes the clinical record: the
// answers are kept as a QuestionnaireResponse that names the Appointment,
// and every change they report (a new address, another insurer, a medicine
// stopped, an allergy no longer there) becomes one Task for the care team
// to review. The check-in itself is one decided (access.Write on
// QuestionnaireResponse) and audited write.
package checkin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/appointments"
	"carefront/internal/audit"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/fhir"
	"carefront/internal/questionnaire"
	"carefront/internal/requests"
	"carefront/internal/sqldb"
)

// Window is how long before a visit check-in opens.
const Window = 7 * 24 * time.Hour

// MaxNote bounds what a person writes about a change.
const MaxNote = 1000

// AppointmentExt names, on a QuestionnaireResponse, the visit it was
// filled in for (R4's basedOn cannot point at an Appointment).
const AppointmentExt = "https://carefront.example/fhir/StructureDefinition/appointment"

// Store opens and records check-ins.
type Store struct {
	DB           *sqldb.DB
	FHIR         *store.Store
	Audit        *audit.Writer
	Appointments *appointments.Store
	// Forms maps a kind of visit (its service type code) to the id of the
	// Questionnaire filled in before it; a kind not in it has none.
	Forms map[string]string
	// Requests puts the review of reported changes in the care team's
	// queue; nil writes the Task alone.
	Requests *requests.Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// ParseForms reads the clinic's map of visit kinds to Questionnaires:
// "follow-up=previsit-1, new-concern=previsit-2".
func ParseForms(v string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, id, ok := strings.Cut(part, "=")
		k, id = strings.TrimSpace(k), strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(id), "Questionnaire/"))
		if !ok || k == "" || !fhir.ValidID(id) {
			return nil, fmt.Errorf("%q is not KIND=QUESTIONNAIRE-ID", part)
		}
		out[k] = id
	}
	return out, nil
}

// Thing is one medicine or allergy to confirm.
type Thing struct {
	ID, Name string
}

// Sheet is what a check-in shows.
type Sheet struct {
	Visit     *appointments.Appointment
	Phones    []string
	Emails    []string
	Address   []string
	Coverage  []string // the insurers' names (and plan)
	Medicines []Thing
	Allergies []Thing
	Form      *questionnaire.Questionnaire // nil: no questionnaire for this kind of visit
	// Done is when the visit was checked in; zero if not yet.
	Done time.Time
}

// inputError is a problem beside one field of the check-in (a
// questionnaire item's is "q-" and its linkId).
func inputError(field, code, bound string) error {
	return apperr.NewField(apperr.Invalid, field, "checkin."+code, "%s: %s %s", field, code, bound).WithBound(bound)
}

// ErrNotOpen: check-in opens seven days before a booked visit and closes
// when it starts.
var ErrNotOpen = apperr.New(apperr.Conflict, "check-in opens 7 days before a booked visit and closes when it starts")

// Open reads what a check-in for one of the person's visits shows. Each
// read is decided and audited by the gateway; a kind of data the person
// may not see is left out.
func (s *Store) Open(ctx context.Context, gw *clinical.Gateway, req clinical.Request, id string) (*Sheet, error) {
	a, err := s.Appointments.Get(ctx, gw, req, id)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if a.Status != "booked" || now.Before(a.Start.Add(-Window)) || !now.Before(a.Start) {
		return nil, ErrNotOpen
	}
	sh := &Sheet{Visit: a}
	if done, err := s.done(ctx, a.ID); err != nil {
		return nil, err
	} else {
		sh.Done = done
	}
	if p, err := gw.Read(ctx, req, "Patient", a.Patient); err == nil {
		var body struct {
			Telecom []struct{ System, Value string } `json:"telecom"`
			Address []struct {
				Line       []string `json:"line"`
				City       string   `json:"city"`
				State      string   `json:"state"`
				PostalCode string   `json:"postalCode"`
			} `json:"address"`
		}
		json.Unmarshal(p.Raw, &body)
		for _, t := range body.Telecom {
			switch t.System {
			case "phone", "sms":
				sh.Phones = append(sh.Phones, t.Value)
			case "email":
				sh.Emails = append(sh.Emails, t.Value)
			}
		}
		for _, ad := range body.Address {
			sh.Address = append(sh.Address, strings.TrimSpace(strings.Join(ad.Line, ", ")+", "+ad.City+" "+ad.State+" "+ad.PostalCode))
		}
	} else if !forbidden(err) {
		return nil, err
	}
	search := func(typ string, params url.Values) ([]*fhir.Resource, error) {
		q, err := fhir.ParseQuery(typ, params, false)
		if err != nil {
			return nil, err
		}
		page, err := gw.Search(ctx, req, q)
		if forbidden(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return page.Matches, nil
	}
	covs, err := search("Coverage", url.Values{"status": {"active"}, "_count": {"20"}})
	if err != nil {
		return nil, err
	}
	for _, c := range covs {
		var body struct {
			Payor []struct{ Display string } `json:"payor"`
			Class []struct{ Name string }    `json:"class"`
		}
		json.Unmarshal(c.Raw, &body)
		name := ""
		if len(body.Payor) > 0 {
			name = body.Payor[0].Display
		}
		if len(body.Class) > 0 && body.Class[0].Name != "" {
			name += " (" + body.Class[0].Name + ")"
		}
		sh.Coverage = append(sh.Coverage, name)
	}
	meds, err := search("MedicationRequest", url.Values{"status": {"active"}, "_count": {"100"}})
	if err != nil {
		return nil, err
	}
	for _, m := range meds {
		sh.Medicines = append(sh.Medicines, Thing{ID: m.ID, Name: s.medicineName(ctx, m.Raw)})
	}
	alls, err := search("AllergyIntolerance", url.Values{"_count": {"100"}})
	if err != nil {
		return nil, err
	}
	for _, al := range alls {
		if strings.Contains(string(al.Raw), `"code":"inactive"`) || strings.Contains(string(al.Raw), `"code":"resolved"`) {
			continue
		}
		sh.Allergies = append(sh.Allergies, Thing{ID: al.ID, Name: conceptText(al.Raw, "code")})
	}
	if qid := s.Forms[a.Type]; qid != "" {
		r, err := s.FHIR.Read(ctx, "Questionnaire", qid)
		if err != nil {
			return nil, fmt.Errorf("checkin: the questionnaire %s for %s visits: %w", qid, a.Type, err)
		}
		if sh.Form, err = questionnaire.Parse(r.Raw); err != nil {
			return nil, fmt.Errorf("checkin: the questionnaire %s cannot be shown: %w", qid, err)
		}
	}
	return sh, nil
}

// medicineName names a MedicationRequest's medicine: its concept, or the
// Medication it refers to (a directory resource, no patient's data).
func (s *Store) medicineName(ctx context.Context, raw []byte) string {
	if n := conceptText(raw, "medicationCodeableConcept"); n != "?" {
		return n
	}
	var body struct {
		Ref struct{ Reference, Display string } `json:"medicationReference"`
	}
	json.Unmarshal(raw, &body)
	if body.Ref.Display != "" {
		return body.Ref.Display
	}
	if typ, id, ok := fhir.ParseRef(body.Ref.Reference); ok && typ == "Medication" {
		if r, err := s.FHIR.Read(ctx, typ, id); err == nil {
			return conceptText(r.Raw, "code")
		}
	}
	return "?"
}

func forbidden(err error) bool {
	c := apperr.CodeOf(err)
	return err != nil && (c == apperr.Forbidden || c == apperr.NotFound)
}

func conceptText(raw []byte, field string) string {
	var body map[string]json.RawMessage
	json.Unmarshal(raw, &body)
	var c struct {
		Text   string `json:"text"`
		Coding []struct {
			Display string `json:"display"`
		} `json:"coding"`
	}
	json.Unmarshal(body[field], &c)
	if c.Text != "" {
		return c.Text
	}
	for _, cd := range c.Coding {
		if cd.Display != "" {
			return cd.Display
		}
	}
	return "?"
}

func (s *Store) done(ctx context.Context, appt string) (time.Time, error) {
	m, err := s.CheckedIn(ctx, []string{appt})
	return m[appt], err
}

// CheckedIn tells, for each visit, when it was checked in (absent: not).
func (s *Store) CheckedIn(ctx context.Context, appts []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	if len(appts) == 0 {
		return out, nil
	}
	args := make([]any, len(appts))
	for i, a := range appts {
		args[i] = a
	}
	err := s.DB.Read(ctx, func(tx *sqldb.Tx) error {
		rows, err := tx.Query(ctx, "SELECT appointment_id, checked_in FROM visit_checkin WHERE appointment_id IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(appts)), ", ")+")", args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var at int64
			if err := rows.Scan(&id, &at); err != nil {
				return err
			}
			out[id] = time.UnixMicro(at).UTC()
		}
		return rows.Err()
	})
	return out, err
}

// Submission is what the person answered.
type Submission struct {
	ContactOK      string // "yes" or "no"
	ContactChanges string
	CoverageOK     string
	CoverageChange string
	// Medicines and Allergies answer "still taking?" and "still
	// allergic?" by id: "yes" or "no".
	Medicines, Allergies map[string]string
	Answers              questionnaire.Answers
}

// Submit records the check-in: the QuestionnaireResponse and, when the
// person reported a change, a Task for the care team, with the audit
// record, in one transaction. Every problem is returned at once (joined
// *InputError) and nothing is written.
func (s *Store) Submit(ctx context.Context, gw *clinical.Gateway, req clinical.Request, account, id string, sub Submission) error {
	sh, err := s.Open(ctx, gw, req, id)
	if err != nil {
		return err
	}
	var bad []error
	yesNo := func(field, v string) {
		if v != "yes" && v != "no" {
			bad = append(bad, inputError(field, "choose", ""))
		}
	}
	note := func(field, v, ok string) string {
		v = strings.TrimSpace(strings.ReplaceAll(v, "\r\n", "\n"))
		switch {
		case ok == "no" && v == "":
			bad = append(bad, inputError(field, "say-what", ""))
		case utf8.RuneCountInString(v) > MaxNote || !utf8.ValidString(v):
			bad = append(bad, inputError(field, "too-long", fmt.Sprint(MaxNote)))
		}
		return v
	}
	yesNo("contact-ok", sub.ContactOK)
	contact := note("contact-changes", sub.ContactChanges, sub.ContactOK)
	var coverage string
	if len(sh.Coverage) > 0 || sub.CoverageOK != "" {
		yesNo("coverage-ok", sub.CoverageOK)
		coverage = note("coverage-changes", sub.CoverageChange, sub.CoverageOK)
	}
	var changes []string
	if sub.ContactOK == "no" {
		changes = append(changes, "Contact details: "+contact)
	}
	if sub.CoverageOK == "no" {
		changes = append(changes, "Insurance: "+coverage)
	}
	for _, m := range sh.Medicines {
		v := sub.Medicines[m.ID]
		yesNo("med-"+m.ID, v)
		if v == "no" {
			changes = append(changes, "No longer taking: "+m.Name+" (MedicationRequest/"+m.ID+")")
		}
	}
	for _, al := range sh.Allergies {
		v := sub.Allergies[al.ID]
		yesNo("allergy-"+al.ID, v)
		if v == "no" {
			changes = append(changes, "No longer allergic: "+al.Name+" (AllergyIntolerance/"+al.ID+")")
		}
	}
	var items []any
	if sh.Form != nil {
		var problems []questionnaire.Problem
		items, problems = sh.Form.Check(sub.Answers)
		for _, p := range problems {
			bad = append(bad, inputError("q-"+p.LinkID, p.Code, p.Bound))
		}
	}
	if len(bad) > 0 {
		return errors.Join(bad...)
	}
	qrID, taskID := newID(), ""
	patient := sh.Visit.Patient
	dec, req, err := gw.Decide(ctx, req, access.Write, access.Target{Type: "QuestionnaireResponse", ID: qrID, Patients: []string{patient}})
	if err != nil {
		return err
	}
	rec := gw.AuditRecord(req, audit.SubtypeCreate, audit.Create)
	rec.Patient, rec.Reason = "Patient/"+patient, "check-in"
	rec.Entities = []audit.Entity{{What: "QuestionnaireResponse/" + qrID}, {What: "Appointment/" + sh.Visit.ID}}
	if !dec.Permit {
		rec.Outcome, rec.Reason = audit.MinorFailure, dec.Reason
		if aerr := s.Audit.Append(ctx, rec); aerr != nil {
			return aerr
		}
		return apperr.New(apperr.Forbidden, "you cannot check in for this record")
	}
	now := s.now()
	form := sh.Form
	if form == nil {
		form = &questionnaire.Questionnaire{ID: "none"}
	}
	qr := form.Response(qrID, patient, append(confirmations(sub, sh), items...), now, map[string]any{
		"extension": []any{map[string]any{"url": AppointmentExt, "valueReference": map[string]any{"reference": "Appointment/" + sh.Visit.ID}}},
		"author":    map[string]any{"reference": req.Principal.User},
	})
	if sh.Form == nil {
		delete(qr, "questionnaire")
	}
	var task map[string]any
	if len(changes) > 0 {
		taskID = newID()
		task = map[string]any{"resourceType": "Task", "id": taskID, "status": "requested", "intent": "order", "priority": "routine",
			"code":        map[string]any{"text": "Review changes reported at check-in"},
			"description": "The patient reported changes at check-in for a visit. Review them; nothing in the record was changed.",
			"focus":       map[string]any{"reference": "Appointment/" + sh.Visit.ID},
			"for":         map[string]any{"reference": "Patient/" + patient},
			"authoredOn":  now.Format(time.RFC3339),
			"requester":   map[string]any{"reference": req.Principal.User},
			"input":       inputs(changes, qrID)}
		rec.Entities = append(rec.Entities, audit.Entity{What: "Task/" + taskID})
	}
	err = s.DB.Write(ctx, func(tx *sqldb.Tx) error {
		if task != nil && s.Requests != nil {
			r := &requests.Request{ID: taskID, Patient: patient, Kind: requests.CheckInReview, Focus: "Appointment/" + sh.Visit.ID,
				Status: requests.Requested, Created: now, Updated: now}
			if err := s.Requests.Insert(ctx, tx, r, "", account, task); err != nil {
				return err
			}
			task = nil
		}
		for _, r := range []map[string]any{qr, task} {
			if r == nil {
				continue
			}
			raw, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if _, err := s.FHIR.UpdateIn(ctx, tx, r["resourceType"].(string), r["id"].(string), raw, ""); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO visit_checkin (appointment_id, patient_id, response_id, task_id, account_id, checked_in) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (appointment_id) DO UPDATE SET response_id = excluded.response_id, task_id = excluded.task_id, account_id = excluded.account_id, checked_in = excluded.checked_in`,
			sh.Visit.ID, patient, qrID, taskID, account, now.UnixMicro()); err != nil {
			return err
		}
		return s.Audit.Stage(ctx, tx, rec)
	})
	if err != nil {
		return err
	}
	s.Audit.Chain(ctx)
	return nil
}

// confirmations are the answers to carefront's own questions, kept in
// the response beside the questionnaire's.
func confirmations(sub Submission, sh *Sheet) []any {
	yes := func(v string) bool { return v == "yes" }
	out := []any{map[string]any{"linkId": "carefront-contact-ok", "text": "Are your contact details right?", "answer": []any{map[string]any{"valueBoolean": yes(sub.ContactOK)}}}}
	if sub.CoverageOK != "" {
		out = append(out, map[string]any{"linkId": "carefront-coverage-ok", "text": "Is your insurance right?", "answer": []any{map[string]any{"valueBoolean": yes(sub.CoverageOK)}}})
	}
	for _, m := range sh.Medicines {
		out = append(out, map[string]any{"linkId": "carefront-med-" + m.ID, "text": "Still taking " + m.Name + "?", "answer": []any{map[string]any{"valueBoolean": yes(sub.Medicines[m.ID])}}})
	}
	for _, a := range sh.Allergies {
		out = append(out, map[string]any{"linkId": "carefront-allergy-" + a.ID, "text": "Still allergic to " + a.Name + "?", "answer": []any{map[string]any{"valueBoolean": yes(sub.Allergies[a.ID])}}})
	}
	return out
}

func inputs(changes []string, qr string) []any {
	out := []any{map[string]any{"type": map[string]any{"text": "Check-in answers"}, "valueReference": map[string]any{"reference": "QuestionnaireResponse/" + qr}}}
	for _, c := range changes {
		out = append(out, map[string]any{"type": map[string]any{"text": "Reported change"}, "valueString": c})
	}
	return out
}

func newID() string { return store.NewUUID() }
