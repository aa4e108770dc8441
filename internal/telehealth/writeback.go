package telehealth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
)

// FollowUp is a follow-up task a clinician can give after a visit.
type FollowUp struct {
	Code string // carefront's code (SysFollowUp); the pages name it in the reader's language
	Text string // in English, the Task's description
}

// SysFollowUp is the code system of follow-up tasks.
const SysFollowUp = "https://carefront.example/CodeSystem/visit-follow-up"

// FollowUps are the follow-up tasks offered after a visit.
var FollowUps = []FollowUp{
	{"book-follow-up-3m", "Book a follow-up visit in 3 months"},
	{"book-follow-up-2w", "Book a follow-up visit in 2 weeks"},
	{"get-labs", "Get the lab tests your clinician ordered"},
	{"send-readings", "Send your home readings through Messages"},
}

// Limits of a write-back.
const (
	MaxSummary   = 20000
	MaxOtherTask = 200
)

// WrapUp is what a clinician writes after a video visit: the summary
// and instructions the patient reads, and their follow-up tasks.
type WrapUp struct {
	Summary string
	Tasks   []string // FollowUp codes
	Other   string   // one more task in the clinician's words
}

// Records writes a video visit back to the record once it has ended.
type Records struct {
	Store *store.Store
	Audit *audit.Writer
	Rooms *Rooms
}

// Visit is what the write-back needs of the appointment.
type Visit struct {
	ID, Patient, Clinician, ServiceType string
	Start, End                          time.Time
}

// ErrWrittenBack: the visit was written back already.
var ErrWrittenBack = apperr.NewField(apperr.Conflict, "", "wrapup.done", "this visit's summary was written already")

func wrapError(field, key, msg string) error {
	return apperr.NewField(apperr.Invalid, field, "wrapup."+key, "%s", msg)
}

func validText(s string, max int, multiline bool) bool {
	return utf8.ValidString(s) && utf8.RuneCountInString(s) <= max &&
		!strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) })
}

// EncounterID, SummaryID and TaskID are the ids of what a visit's
// write-back creates, so it is written once and found by the visit.
func EncounterID(appointment string) string { return "visit-" + appointment }
func SummaryID(appointment string) string   { return "visit-summary-" + appointment }
func TaskID(appointment, code string) string {
	return "visit-task-" + appointment + "-" + code
}

// WriteBack records the ended visit: the Encounter (finished, virtual,
// from the real first join to the end), the summary as a
// DocumentReference (text), a Task per follow-up, and the Appointment
// fulfilled, in one transaction with their audit records. It is decided
// as the clinician's Write for the patient (a care relationship).
func (rs *Records) WriteBack(ctx context.Context, gw *clinical.Gateway, req clinical.Request, v Visit, w WrapUp) error {
	w.Summary = strings.TrimSpace(strings.ReplaceAll(w.Summary, "\r\n", "\n"))
	w.Other = strings.TrimSpace(w.Other)
	switch {
	case w.Summary == "":
		return wrapError("summary", "summary-missing", "write the visit's summary and instructions for the patient")
	case !validText(w.Summary, MaxSummary, true):
		return wrapError("summary", "summary-long", fmt.Sprintf("the summary can be up to %d characters of text", MaxSummary))
	case !validText(w.Other, MaxOtherTask, false):
		return wrapError("other", "other-long", fmt.Sprintf("a task can be up to %d characters on one line", MaxOtherTask))
	}
	var tasks []FollowUp
	for _, code := range w.Tasks {
		i := slices.IndexFunc(FollowUps, func(f FollowUp) bool { return f.Code == code })
		if i < 0 {
			return wrapError("tasks", "task-unknown", "choose follow-ups from the list")
		}
		if !slices.Contains(tasks, FollowUps[i]) {
			tasks = append(tasks, FollowUps[i])
		}
	}
	if w.Other != "" {
		tasks = append(tasks, FollowUp{Code: "other", Text: w.Other})
	}
	ended, err := rs.Rooms.Ended(ctx, v.ID)
	if err != nil {
		return err
	}
	start, end, err := rs.Rooms.Times(ctx, v.ID)
	if err != nil {
		return err
	}
	if ended.IsZero() {
		return apperr.NewField(apperr.Conflict, "", "wrapup.not-ended", "end the visit first")
	}
	if start.IsZero() {
		return apperr.NewField(apperr.Conflict, "", "wrapup.nobody", "the patient never joined this visit; there is nothing to write back")
	}
	dec, req, err := gw.Decide(ctx, req, access.Write, access.Target{Type: "Encounter", ID: EncounterID(v.ID), Patients: []string{v.Patient}})
	if err != nil {
		return err
	}
	if !dec.Permit {
		if err := gw.Refused(ctx, req, dec.Reason); err != nil {
			return err
		}
		return apperr.New(apperr.Forbidden, "you cannot write to this patient's record")
	}
	if _, err := rs.Store.Read(ctx, "Encounter", EncounterID(v.ID)); err == nil {
		return ErrWrittenBack
	}
	appt, err := rs.Store.Read(ctx, "Appointment", v.ID)
	if err != nil {
		return err
	}
	var apptBody map[string]any
	if err := json.Unmarshal(appt.Raw, &apptBody); err != nil {
		return err
	}
	apptBody["status"] = "fulfilled"

	now := rs.Rooms.DB.Now().UTC()
	patient := map[string]any{"reference": "Patient/" + v.Patient}
	clinician := map[string]any{"reference": req.Principal.Practitioner}
	enc := map[string]any{"resourceType": "Encounter", "id": EncounterID(v.ID), "status": "finished",
		"class":   map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR", "display": "virtual"},
		"subject": patient, "participant": []any{map[string]any{"individual": clinician}},
		"appointment": []any{map[string]any{"reference": "Appointment/" + v.ID}},
		"period":      map[string]any{"start": start.UTC().Format(time.RFC3339), "end": end.UTC().Format(time.RFC3339)},
	}
	if v.ServiceType != "" {
		enc["serviceType"] = map[string]any{"text": v.ServiceType}
	}
	doc := map[string]any{"resourceType": "DocumentReference", "id": SummaryID(v.ID), "status": "current",
		"type": map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "34133-9", "display": "Summary of episode note"}},
			"text": "Video visit summary"},
		"category": []any{map[string]any{"coding": []any{map[string]any{"system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category", "code": "clinical-note"}}}},
		"subject":  patient, "date": now.Format(time.RFC3339), "author": []any{clinician},
		"description": "Video visit summary",
		"content": []any{map[string]any{"attachment": map[string]any{"contentType": "text/plain; charset=utf-8",
			"data": base64.StdEncoding.EncodeToString([]byte(w.Summary)), "title": "Video visit summary", "creation": now.Format(time.RFC3339)}}},
		"context": map[string]any{"encounter": []any{map[string]any{"reference": "Encounter/" + EncounterID(v.ID)}},
			"period": enc["period"]},
	}
	resources := []map[string]any{enc, doc, apptBody}
	for _, f := range tasks {
		resources = append(resources, map[string]any{"resourceType": "Task", "id": TaskID(v.ID, f.Code), "status": "requested", "intent": "order",
			"code":        map[string]any{"coding": []any{map[string]any{"system": SysFollowUp, "code": f.Code}}, "text": f.Text},
			"description": f.Text, "for": patient, "encounter": map[string]any{"reference": "Encounter/" + EncounterID(v.ID)},
			"authoredOn": now.Format(time.RFC3339), "requester": clinician, "owner": patient})
	}
	b := &fhir.Bundle{ResourceType: "Bundle", Type: "transaction"}
	for _, r := range resources {
		raw, err := json.Marshal(r)
		if err != nil {
			return err
		}
		typ, id := r["resourceType"].(string), r["id"].(string)
		b.Entry = append(b.Entry, &fhir.Entry{Resource: raw, Request: &fhir.EntryRequest{Method: "PUT", URL: typ + "/" + id}})
	}
	_, err = rs.Store.Process(ctx, b, store.BundleOptions{Import: true, Audit: func(ctx context.Context, tx *sqldb.Tx, res *store.Result) error {
		for _, wr := range res.Written {
			if wr == nil || wr.Resource == nil {
				continue
			}
			rec := gw.AuditRecord(req, audit.SubtypeCreate, audit.Create)
			rec.Subtype = append(rec.Subtype, SubtypeVideoVisit)
			rec.Patient, rec.Reason = "Patient/"+v.Patient, dec.Reason
			rec.Entities = []audit.Entity{{What: wr.Resource.Ref()}, {What: "Appointment/" + v.ID}}
			if err := rs.Audit.Stage(ctx, tx, rec); err != nil {
				return err
			}
		}
		return nil
	}})
	if err != nil {
		return fmt.Errorf("telehealth: write-back: %w", err)
	}
	rs.Audit.Chain(ctx)
	return nil
}
