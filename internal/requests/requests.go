// Package requests is what patients ask their care team to do, and the
// care team's queue of it: refills and renewals of medicines (sent to the
// pharmacy the patient chose, which is remembered) and reviews of changes
// reported at check-in. Each request is a FHIR Task in carefront's store
// and a row of patient_request, written together; the patient sees its
// status (requested, in progress, completed, declined with the reason the
// team gave), and is told it was answered by a PHI-free notice.
//
// Asking is decided as access.Write on Task, with the Task's focus type as
// what a caregiver's grant must cover (a refill: medicines). Clinicians
// answer requests of patients they have a care relationship with.
package requests

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
)

// Kinds of request.
const (
	Refill        = "refill"
	Renewal       = "renewal"
	CheckInReview = "checkin-review"
)

// Statuses, as FHIR Task statuses.
const (
	Requested  = "requested"
	InProgress = "in-progress"
	Completed  = "completed"
	Declined   = "rejected"
)

// PharmacyType is the Organization type of a pharmacy.
const (
	PharmacySystem = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
	PharmacyCode   = "PHARM"
)

// NoticeAnswered is the notice to the patient when the team answers.
const NoticeAnswered = "request-answered"

// MaxReason bounds the team's reason for declining.
const MaxReason = 500

// Store keeps requests.
type Store struct {
	DB    *sqldb.DB
	FHIR  *store.Store
	Audit *audit.Writer
	// Notices queues the PHI-free notice that a request was answered; nil
	// sends none.
	Notices interface {
		QueuePatientNotice(ctx context.Context, tx *sqldb.Tx, patientID, event string) error
	}
	Now func() time.Time
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Request is one request as the patient and the team see it.
type Request struct {
	ID, Patient, Kind, Focus string
	What                     string // the medicine's name, or what the request is about
	Pharmacy                 string // the pharmacy's name
	Status, Reason           string
	Created, Updated         time.Time
	// Due, for a correction, is when the team must have answered.
	Due time.Time
	// Statement is the patient's statement of disagreement with a denied
	// correction.
	Statement string
	// Details are what the patient wrote or reported, as "label: text"
	// (a correction's texts, the changes reported at check-in).
	Details []string
}

// Overdue reports whether an open request is past its due time at now.
func (r Request) Overdue(now time.Time) bool { return r.Open() && !r.Due.IsZero() && now.After(r.Due) }

// Open reports whether the team has yet to finish it.
func (r Request) Open() bool { return r.Status == Requested || r.Status == InProgress }

// Pharmacy is a pharmacy the clinic works with.
type Pharmacy struct {
	ID, Name, Address string
}

// inputError is a choice that cannot be acted on, with its field.
func inputError(code apperr.Code, field, key, msg string) error {
	return apperr.NewField(code, field, "requests."+key, "%s", msg)
}

// ErrNoRequest is a request that does not exist or is not the person's.
var ErrNoRequest = apperr.New(apperr.NotFound, "no such request")

// Pharmacies lists the clinic's pharmacies (Organizations of type
// pharmacy), by name.
func (s *Store) Pharmacies(ctx context.Context) ([]Pharmacy, error) {
	q, err := fhir.ParseQuery("Organization", url.Values{"type": {PharmacySystem + "|" + PharmacyCode}, "_count": {"100"}}, false)
	if err != nil {
		return nil, err
	}
	page, err := s.FHIR.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []Pharmacy
	for _, r := range page.Matches {
		var body struct {
			Name    string `json:"name"`
			Active  *bool  `json:"active"`
			Address []struct {
				Line []string `json:"line"`
				City string   `json:"city"`
			} `json:"address"`
		}
		json.Unmarshal(r.Raw, &body)
		if body.Active != nil && !*body.Active {
			continue
		}
		p := Pharmacy{ID: r.ID, Name: body.Name}
		if len(body.Address) > 0 {
			p.Address = strings.Join(append(body.Address[0].Line, body.Address[0].City), ", ")
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Pharmacy) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Chosen is the pharmacy the patient chose last, or "".
func (s *Store) Chosen(ctx context.Context, patient string) (string, error) {
	var id string
	err := s.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT pharmacy_id FROM pharmacy_choice WHERE patient_id = ?", patient).Scan(&id)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// Medicine is what a refill form shows of one medicine.
type Medicine struct {
	ID, Name    string
	RefillsLeft int // -1: the record does not say
	Kind        string
}

// Medicine reads one of the person's medicines for a refill (decided and
// audited by the gateway): another patient's is NotFound; one not active
// is an InputError. Kind is a refill while refills are left, else a
// renewal.
func (s *Store) Medicine(ctx context.Context, gw *clinical.Gateway, req clinical.Request, id string) (*Medicine, error) {
	r, err := gw.Read(ctx, req, "MedicationRequest", id)
	switch apperr.CodeOf(err) {
	case apperr.NotFound, apperr.Gone, apperr.Forbidden, apperr.Invalid:
		return nil, apperr.New(apperr.NotFound, "no such medicine")
	}
	if err != nil {
		return nil, err
	}
	var body struct {
		Status  string                     `json:"status"`
		Subject struct{ Reference string } `json:"subject"`
		Concept struct {
			Text   string                     `json:"text"`
			Coding []struct{ Display string } `json:"coding"`
		} `json:"medicationCodeableConcept"`
		Ref      struct{ Reference, Display string } `json:"medicationReference"`
		Dispense struct {
			Repeats *int `json:"numberOfRepeatsAllowed"`
		} `json:"dispenseRequest"`
	}
	json.Unmarshal(r.Raw, &body)
	if body.Subject.Reference != "Patient/"+req.Principal.Patient {
		return nil, apperr.New(apperr.NotFound, "no such medicine")
	}
	m := &Medicine{ID: r.ID, Name: body.Concept.Text, RefillsLeft: -1}
	if m.Name == "" && len(body.Concept.Coding) > 0 {
		m.Name = body.Concept.Coding[0].Display
	}
	if m.Name == "" {
		m.Name = body.Ref.Display
		if typ, mid, ok := fhir.ParseRef(body.Ref.Reference); ok && m.Name == "" && typ == "Medication" {
			if med, err := s.FHIR.Read(ctx, typ, mid); err == nil {
				var mb struct {
					Code struct {
						Text   string                     `json:"text"`
						Coding []struct{ Display string } `json:"coding"`
					} `json:"code"`
				}
				json.Unmarshal(med.Raw, &mb)
				m.Name = mb.Code.Text
				if m.Name == "" && len(mb.Code.Coding) > 0 {
					m.Name = mb.Code.Coding[0].Display
				}
			}
		}
	}
	if body.Status != "active" {
		return m, inputError(apperr.Conflict, "medicine", "not-active", "only a medicine you take now can be refilled")
	}
	if body.Dispense.Repeats != nil {
		fills := 0
		q, err := fhir.ParseQuery("MedicationDispense", url.Values{"prescription": {"MedicationRequest/" + id}, "status": {"completed"}, "_count": {"200"}}, false)
		if err != nil {
			return nil, err
		}
		if page, err := gw.Search(ctx, req, q); err == nil {
			fills = len(page.Matches)
		}
		m.RefillsLeft = max(0, *body.Dispense.Repeats-max(0, fills-1)) // the first fill is not a refill
	}
	m.Kind = Refill
	if m.RefillsLeft == 0 {
		m.Kind = Renewal
	}
	return m, nil
}

// Ask asks for a refill (or, with none left, a renewal) of one of the
// person's active medicines, to be sent to pharmacy. A medicine with a
// request still open, another patient's, or not active, and a pharmacy
// not the clinic's, are refused; nothing changes.
func (s *Store) Ask(ctx context.Context, gw *clinical.Gateway, req clinical.Request, account, medID, pharmacy string) (*Request, error) {
	m, err := s.Medicine(ctx, gw, req, medID)
	if err != nil {
		return nil, err
	}
	phs, err := s.Pharmacies(ctx)
	if err != nil {
		return nil, err
	}
	var ph *Pharmacy
	for i := range phs {
		if phs[i].ID == pharmacy {
			ph = &phs[i]
		}
	}
	if ph == nil {
		return nil, inputError(apperr.Invalid, "pharmacy", "pharmacy-err", "choose one of the pharmacies listed")
	}
	patient := req.Principal.Patient
	focus := "MedicationRequest/" + m.ID
	open, err := s.openFor(ctx, patient, focus)
	if err != nil {
		return nil, err
	}
	if open {
		return nil, inputError(apperr.Conflict, "medicine", "already-open", "this medicine has a request the care team has not finished yet")
	}
	id := newID()
	dec, req, err := gw.Decide(ctx, req, access.Write, access.Target{Type: "Task", ID: id, Patients: []string{patient}, Focus: "MedicationRequest"})
	if err != nil {
		return nil, err
	}
	rec := gw.AuditRecord(req, audit.SubtypeCreate, audit.Create)
	rec.Patient, rec.Reason = "Patient/"+patient, m.Kind
	rec.Entities = []audit.Entity{{What: "Task/" + id}, {What: focus}}
	if !dec.Permit {
		rec.Outcome, rec.Reason = audit.MinorFailure, dec.Reason
		if aerr := s.Audit.Append(ctx, rec); aerr != nil {
			return nil, aerr
		}
		return nil, apperr.New(apperr.Forbidden, "you cannot ask for refills for this record")
	}
	now := s.now()
	r := &Request{ID: id, Patient: patient, Kind: m.Kind, Focus: focus, What: m.Name, Pharmacy: ph.Name, Status: Requested, Created: now, Updated: now}
	code := "Refill a prescription"
	if m.Kind == Renewal {
		code = "Renew a prescription"
	}
	task := map[string]any{"resourceType": "Task", "id": id, "status": Requested, "intent": "order", "priority": "routine",
		"code":       map[string]any{"coding": []any{map[string]any{"system": "https://carefront.example/fhir/CodeSystem/request-kind", "code": m.Kind, "display": code}}, "text": code},
		"focus":      map[string]any{"reference": focus, "display": m.Name},
		"for":        map[string]any{"reference": "Patient/" + patient},
		"authoredOn": now.Format(time.RFC3339), "lastModified": now.Format(time.RFC3339),
		"requester": map[string]any{"reference": req.Principal.User},
		"input": []any{map[string]any{"type": map[string]any{"text": "Pharmacy"},
			"valueReference": map[string]any{"reference": "Organization/" + ph.ID, "display": ph.Name}}}}
	err = s.DB.Write(ctx, func(tx *sqldb.Tx) error {
		if err := s.Insert(ctx, tx, r, ph.ID, account, task); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO pharmacy_choice (patient_id, pharmacy_id, updated) VALUES (?, ?, ?)
			ON CONFLICT (patient_id) DO UPDATE SET pharmacy_id = excluded.pharmacy_id, updated = excluded.updated`, patient, ph.ID, now.UnixMicro()); err != nil {
			return err
		}
		return s.Audit.Stage(ctx, tx, rec)
	})
	if err != nil {
		return nil, err
	}
	s.Audit.Chain(ctx)
	return r, nil
}

// Insert writes a request and its Task in tx (check-in's reviews come
// this way too).
func (s *Store) Insert(ctx context.Context, tx *sqldb.Tx, r *Request, pharmacy, account string, task map[string]any) error {
	raw, err := json.Marshal(task)
	if err != nil {
		return err
	}
	if _, err := s.FHIR.UpdateIn(ctx, tx, "Task", r.ID, raw, ""); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO patient_request (id, patient_id, kind, focus, pharmacy_id, status, reason, account_id, created, updated)
		VALUES (?, ?, ?, ?, ?, ?, '', ?, ?, ?)`, r.ID, r.Patient, r.Kind, r.Focus, pharmacy, r.Status, account, r.Created.UnixMicro(), r.Updated.UnixMicro())
	return err
}

func (s *Store) openFor(ctx context.Context, patient, focus string) (bool, error) {
	var n int
	err := s.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT COUNT(*) FROM patient_request WHERE patient_id = ? AND focus = ? AND status IN (?, ?)",
			patient, focus, Requested, InProgress).Scan(&n)
	})
	return n > 0, err
}

const requestCols = "r.id, r.patient_id, r.kind, r.focus, r.pharmacy_id, r.status, r.reason, r.created, r.updated, r.due, r.statement"

func (s *Store) scan(ctx context.Context, rows *sql.Rows) ([]Request, error) {
	var out []Request
	phs, _ := s.Pharmacies(ctx)
	names := map[string]string{}
	for _, p := range phs {
		names[p.ID] = p.Name
	}
	for rows.Next() {
		var r Request
		var ph string
		var created, updated int64
		var due sql.NullInt64
		if err := rows.Scan(&r.ID, &r.Patient, &r.Kind, &r.Focus, &ph, &r.Status, &r.Reason, &created, &updated, &due, &r.Statement); err != nil {
			return nil, err
		}
		if due.Valid {
			r.Due = time.UnixMicro(due.Int64).UTC()
		}
		r.Pharmacy = names[ph]
		r.Created, r.Updated = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// What each is about, from its Task (focus display): one search for a
	// hundred at a time.
	byID := map[string]int{}
	for i := range out {
		byID[out[i].ID] = i
	}
	for from := 0; from < len(out); from += 100 {
		ids := make([]string, 0, 100)
		for _, r := range out[from:min(from+100, len(out))] {
			ids = append(ids, r.ID)
		}
		q, err := fhir.ParseQuery("Task", url.Values{"_id": {strings.Join(ids, ",")}, "_count": {"100"}}, false)
		if err != nil {
			return nil, err
		}
		page, err := s.FHIR.Search(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, t := range page.Matches {
			i, ok := byID[t.ID]
			if !ok {
				continue
			}
			var body struct {
				Focus struct{ Display string } `json:"focus"`
				Input []struct {
					Type struct {
						Text string `json:"text"`
					} `json:"type"`
					ValueString string `json:"valueString"`
				} `json:"input"`
			}
			json.Unmarshal(t.Raw, &body)
			out[i].What = body.Focus.Display
			for _, in := range body.Input {
				if in.ValueString != "" {
					out[i].Details = append(out[i].Details, in.Type.Text+": "+in.ValueString)
				}
			}
		}
	}
	return out, nil
}

// Mine lists the refill and renewal requests of the person's patient,
// newest first: one decided and audited read of their Tasks.
func (s *Store) Mine(ctx context.Context, gw *clinical.Gateway, req clinical.Request) ([]Request, error) {
	return s.mine(ctx, gw, req, []string{Refill, Renewal}, "MedicationRequest")
}

func (s *Store) mine(ctx context.Context, gw *clinical.Gateway, req clinical.Request, kinds []string, focus string) ([]Request, error) {
	patient := req.Principal.Patient
	dec, req, err := gw.Decide(ctx, req, access.Read, access.Target{Type: "Task", Patients: []string{patient}, Focus: focus})
	if err != nil {
		return nil, err
	}
	if !dec.Permit {
		return nil, nil
	}
	var out []Request
	args := []any{patient}
	for _, k := range kinds {
		args = append(args, k)
	}
	err = s.DB.Read(ctx, func(tx *sqldb.Tx) error {
		rows, err := tx.Query(ctx, "SELECT "+requestCols+" FROM patient_request r WHERE r.patient_id = ? AND r.kind IN ("+
			strings.TrimSuffix(strings.Repeat("?, ", len(kinds)), ", ")+") ORDER BY r.created DESC LIMIT 100", args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		out, err = s.scan(ctx, rows)
		return err
	})
	if err != nil || len(out) == 0 {
		return out, err
	}
	rec := gw.AuditRecord(req, audit.SubtypeSearch, audit.Read)
	rec.Patient, rec.Reason = "Patient/"+patient, dec.Reason
	for _, r := range out {
		rec.Entities = append(rec.Entities, audit.Entity{What: "Task/" + r.ID})
	}
	return out, s.Audit.Append(ctx, rec)
}

// Queue lists open requests (oldest first) of the patients the staff
// member may see: cares(patient) says whether they have a care
// relationship, and each patient's are decided and audited.
func (s *Store) Queue(ctx context.Context, gw *clinical.Gateway, staff clinical.Request, cares func(ctx context.Context, practitioner, patient string) (bool, error)) ([]Request, error) {
	var all []Request
	err := s.DB.Read(ctx, func(tx *sqldb.Tx) error {
		rows, err := tx.Query(ctx, "SELECT "+requestCols+" FROM patient_request r WHERE r.status IN (?, ?) ORDER BY r.created LIMIT 500", Requested, InProgress)
		if err != nil {
			return err
		}
		defer rows.Close()
		all, err = s.scan(ctx, rows)
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []Request
	decided := map[string]bool{}
	for _, r := range all {
		ok, seen := decided[r.Patient]
		if !seen {
			if ok, err = s.staffMay(ctx, gw, staff, r.Patient, access.Read, cares); err != nil {
				return nil, err
			}
			decided[r.Patient] = ok
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}

func (s *Store) staffMay(ctx context.Context, gw *clinical.Gateway, staff clinical.Request, patient string, a access.Action,
	cares func(ctx context.Context, practitioner, patient string) (bool, error)) (bool, error) {
	req := staff
	req.Principal.Patient = patient
	if req.Principal.Practitioner != "" && cares != nil {
		ok, err := cares(ctx, req.Principal.Practitioner, patient)
		if err != nil {
			return false, err
		}
		req.Principal.CareRelationship = ok
	}
	dec, req, err := gw.Decide(ctx, req, a, access.Target{Type: "Task", Patients: []string{patient}})
	if err != nil {
		return false, err
	}
	sub, act := audit.SubtypeSearch, audit.Read
	if a == access.Write {
		sub, act = audit.SubtypeUpdate, audit.Update
	}
	rec := gw.AuditRecord(req, sub, act)
	rec.Patient, rec.Reason = "Patient/"+patient, dec.Reason
	if !dec.Permit {
		rec.Outcome = audit.MinorFailure
	}
	if a == access.Read || !dec.Permit {
		if err := s.Audit.Append(ctx, rec); err != nil {
			return false, err
		}
	}
	return dec.Permit, nil
}

// Answer moves a request on: in progress, completed, or declined with a
// reason for the patient. The patient is told (PHI-free) when it is
// completed or declined.
func (s *Store) Answer(ctx context.Context, gw *clinical.Gateway, staff clinical.Request, id, status, reason string,
	cares func(ctx context.Context, practitioner, patient string) (bool, error)) error {
	if !slices.Contains([]string{InProgress, Completed, Declined}, status) {
		return inputError(apperr.Invalid, "status", "status", "choose in progress, done or declined")
	}
	reason = strings.TrimSpace(reason)
	if status == Declined && reason == "" {
		return inputError(apperr.Invalid, "reason", "reason-missing", "say why, for the patient")
	}
	if utf8.RuneCountInString(reason) > MaxReason {
		return inputError(apperr.Invalid, "reason", "reason-long", fmt.Sprintf("a reason can be up to %d characters", MaxReason))
	}
	var patient, current string
	err := s.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT patient_id, status FROM patient_request WHERE id = ?", id).Scan(&patient, &current)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNoRequest
	}
	if err != nil {
		return err
	}
	ok, err := s.staffMay(ctx, gw, staff, patient, access.Write, cares)
	if err != nil {
		return err
	}
	if !ok {
		return ErrNoRequest
	}
	if current != Requested && current != InProgress {
		return inputError(apperr.Conflict, "status", "finished", "this request is finished already")
	}
	now := s.now()
	req := staff
	req.Principal.Patient = patient
	rec := gw.AuditRecord(req, audit.SubtypeUpdate, audit.Update)
	rec.Patient, rec.Reason, rec.Entities = "Patient/"+patient, "request-"+status, []audit.Entity{{What: "Task/" + id}}
	err = s.DB.Write(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, "UPDATE patient_request SET status = ?, reason = ?, updated = ? WHERE id = ? AND status = ?", status, reason, now.UnixMicro(), id, current)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return inputError(apperr.Conflict, "status", "finished", "someone else answered this request just now")
		}
		t, err := s.FHIR.ReadIn(ctx, tx, "Task", id)
		if err != nil {
			return err
		}
		var body map[string]any
		if err := json.Unmarshal(t.Raw, &body); err != nil {
			return err
		}
		delete(body, "meta")
		body["status"], body["lastModified"] = status, now.Format(time.RFC3339)
		body["owner"] = map[string]any{"reference": staff.Principal.User, "display": staff.Principal.Name}
		if reason != "" {
			body["statusReason"] = map[string]any{"text": reason}
		}
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		if _, err := s.FHIR.UpdateIn(ctx, tx, "Task", id, raw, ""); err != nil {
			return err
		}
		if s.Notices != nil && (status == Completed || status == Declined) {
			if err := s.Notices.QueuePatientNotice(ctx, tx, patient, NoticeAnswered); err != nil {
				return err
			}
		}
		return s.Audit.Stage(ctx, tx, rec)
	})
	if err != nil {
		return err
	}
	s.Audit.Chain(ctx)
	return nil
}

func newID() string { return store.NewUUID() }
