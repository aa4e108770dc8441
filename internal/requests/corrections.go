package requests

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/clinical"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
)

// Correction is a request to correct the record (HIPAA 164.526; ONC
// 170.315(d)(4)): the item, what the patient says is wrong and what it
// should say. The care team accepts it (Completed) or denies it with a
// reason (Declined) within CorrectionDue; after a denial the patient may
// add a statement of disagreement, kept with the item.
const Correction = "correction"

// CorrectionDue is how long the care team has to answer a correction.
const CorrectionDue = 60 * 24 * time.Hour

// MaxCorrectionText bounds each text of a correction and a statement.
const MaxCorrectionText = 2000

// CorrectableTypes are the kinds of record item a patient can ask to
// correct.
var CorrectableTypes = []string{"Observation", "DiagnosticReport", "Condition", "AllergyIntolerance", "MedicationRequest",
	"Immunization", "Procedure", "DocumentReference", "Encounter", "Patient"}

func checkCorrectionText(field, v string, required bool) (string, error) {
	v = strings.TrimSpace(strings.ReplaceAll(v, "\r\n", "\n"))
	switch {
	case v == "" && required:
		return "", inputError(apperr.Invalid, field, "correction-missing", "say what is wrong")
	case utf8.RuneCountInString(v) > MaxCorrectionText || !utf8.ValidString(v):
		return "", inputError(apperr.Invalid, field, "correction-long", "write at most 2000 characters")
	}
	return v, nil
}

// Item names a record item for the correction form: its reference and a
// label ("Hemoglobin A1c, March 3").
type Item struct {
	Ref, Type, Label string
}

// CorrectionItem reads the item a correction is about, decided and
// audited by the gateway: another patient's, or a kind that cannot be
// corrected, is NotFound.
func (s *Store) CorrectionItem(ctx context.Context, gw *clinical.Gateway, req clinical.Request, ref string) (*Item, error) {
	typ, id, ok := fhir.ParseRef(ref)
	if !ok || !slices.Contains(CorrectableTypes, typ) {
		return nil, apperr.New(apperr.NotFound, "no such item in your record")
	}
	r, err := gw.Read(ctx, req, typ, id)
	switch apperr.CodeOf(err) {
	case apperr.NotFound, apperr.Gone, apperr.Forbidden, apperr.Invalid:
		return nil, apperr.New(apperr.NotFound, "no such item in your record")
	}
	if err != nil {
		return nil, err
	}
	if typ == "Patient" && id != req.Principal.Patient {
		return nil, apperr.New(apperr.NotFound, "no such item in your record")
	}
	return &Item{Ref: typ + "/" + id, Type: typ, Label: label(r)}, nil
}

// label is a short human name of a resource.
func label(r *fhir.Resource) string {
	var body map[string]json.RawMessage
	json.Unmarshal(r.Raw, &body)
	for _, f := range []string{"code", "medicationCodeableConcept", "vaccineCode", "type"} {
		var c struct {
			Text   string `json:"text"`
			Coding []struct {
				Display string `json:"display"`
			} `json:"coding"`
		}
		var list []json.RawMessage
		raw := body[f]
		if json.Unmarshal(raw, &list) == nil && len(list) > 0 {
			raw = list[0]
		}
		if json.Unmarshal(raw, &c) == nil {
			if c.Text != "" {
				return c.Text
			}
			for _, cd := range c.Coding {
				if cd.Display != "" {
					return cd.Display
				}
			}
		}
	}
	if r.Type == "Patient" {
		return "Your details"
	}
	return r.Type
}

// AskCorrection asks the care team to correct an item of the record. One
// open correction per item; another patient's item is NotFound; nothing
// changes on a refusal.
func (s *Store) AskCorrection(ctx context.Context, gw *clinical.Gateway, req clinical.Request, account, ref, wrong, should string) (*Request, error) {
	wrong, err1 := checkCorrectionText("wrong", wrong, true)
	should, err2 := checkCorrectionText("should", should, false)
	if err1 != nil || err2 != nil {
		return nil, errors.Join(err1, err2)
	}
	it, err := s.CorrectionItem(ctx, gw, req, ref)
	if err != nil {
		return nil, err
	}
	patient := req.Principal.Patient
	if open, err := s.openFor(ctx, patient, it.Ref); err != nil {
		return nil, err
	} else if open {
		return nil, inputError(apperr.Conflict, "wrong", "correction-open", "you asked to correct this already, and the care team has not answered yet")
	}
	id := newID()
	dec, req, err := gw.Decide(ctx, req, access.Write, access.Target{Type: "Task", ID: id, Patients: []string{patient}, Focus: it.Type})
	if err != nil {
		return nil, err
	}
	rec := gw.AuditRecord(req, audit.SubtypeCreate, audit.Create)
	rec.Patient, rec.Reason = "Patient/"+patient, Correction
	rec.Entities = []audit.Entity{{What: "Task/" + id}, {What: it.Ref}}
	if !dec.Permit {
		rec.Outcome, rec.Reason = audit.MinorFailure, dec.Reason
		if aerr := s.Audit.Append(ctx, rec); aerr != nil {
			return nil, aerr
		}
		return nil, apperr.New(apperr.Forbidden, "you cannot ask for corrections of this record")
	}
	now := s.now()
	due := now.Add(CorrectionDue)
	r := &Request{ID: id, Patient: patient, Kind: Correction, Focus: it.Ref, What: it.Label, Status: Requested, Created: now, Updated: now, Due: due}
	inputs := []any{map[string]any{"type": map[string]any{"text": "What is wrong"}, "valueString": wrong}}
	if should != "" {
		inputs = append(inputs, map[string]any{"type": map[string]any{"text": "What it should say"}, "valueString": should})
	}
	task := map[string]any{"resourceType": "Task", "id": id, "status": Requested, "intent": "order", "priority": "routine",
		"code":       map[string]any{"coding": []any{map[string]any{"system": "https://carefront.example/fhir/CodeSystem/request-kind", "code": Correction, "display": "Correct the record"}}, "text": "Correct the record"},
		"focus":      map[string]any{"reference": it.Ref, "display": it.Label},
		"for":        map[string]any{"reference": "Patient/" + patient},
		"authoredOn": now.Format(time.RFC3339), "lastModified": now.Format(time.RFC3339),
		"requester":   map[string]any{"reference": req.Principal.User},
		"restriction": map[string]any{"period": map[string]any{"end": due.Format(time.RFC3339)}},
		"input":       inputs}
	err = s.DB.Write(ctx, func(tx *sqldb.Tx) error {
		if err := s.Insert(ctx, tx, r, "", account, task); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE patient_request SET due = ? WHERE id = ?", due.UnixMicro(), id); err != nil {
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

// Corrections lists the patient's corrections, newest first (one
// decided and audited read).
func (s *Store) Corrections(ctx context.Context, gw *clinical.Gateway, req clinical.Request) ([]Request, error) {
	return s.mine(ctx, gw, req, []string{Correction}, "")
}

// Disagree adds the patient's statement of disagreement to a denied
// correction; it is kept with the item and replaces an earlier one.
func (s *Store) Disagree(ctx context.Context, gw *clinical.Gateway, req clinical.Request, id, statement string) error {
	statement, err := checkCorrectionText("statement", statement, true)
	if err != nil {
		return err
	}
	patient := req.Principal.Patient
	var kind, status, focus string
	err = s.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT kind, status, focus FROM patient_request WHERE id = ? AND patient_id = ?", id, patient).Scan(&kind, &status, &focus)
	})
	if errors.Is(err, sql.ErrNoRows) || (err == nil && kind != Correction) {
		return ErrNoRequest
	}
	if err != nil {
		return err
	}
	typ, _, _ := fhir.ParseRef(focus)
	dec, req, err := gw.Decide(ctx, req, access.Write, access.Target{Type: "Task", ID: id, Patients: []string{patient}, Focus: typ})
	if err != nil {
		return err
	}
	rec := gw.AuditRecord(req, audit.SubtypeUpdate, audit.Update)
	rec.Patient, rec.Reason, rec.Entities = "Patient/"+patient, "statement-of-disagreement", []audit.Entity{{What: "Task/" + id}, {What: focus}}
	if !dec.Permit {
		rec.Outcome, rec.Reason = audit.MinorFailure, dec.Reason
		if aerr := s.Audit.Append(ctx, rec); aerr != nil {
			return aerr
		}
		return ErrNoRequest
	}
	if status != Declined {
		return inputError(apperr.Conflict, "statement", "not-denied", "a statement of disagreement follows a denied correction")
	}
	now := s.now()
	err = s.DB.Write(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, "UPDATE patient_request SET statement = ?, updated = ? WHERE id = ?", statement, now.UnixMicro(), id); err != nil {
			return err
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
		body["note"] = []any{map[string]any{"authorReference": map[string]any{"reference": req.Principal.User}, "time": now.Format(time.RFC3339),
			"text": "Statement of disagreement: " + statement}}
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		if _, err := s.FHIR.UpdateIn(ctx, tx, "Task", id, raw, ""); err != nil {
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
