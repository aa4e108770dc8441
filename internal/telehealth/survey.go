package telehealth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
)

// SurveyQuestionnaire is the canonical URL of the three questions asked
// after a video visit; the answers feed the portal's measures.
const SurveyQuestionnaire = "https://carefront.example/fhir/Questionnaire/video-visit-survey"

// SurveyQuestion is one question and its answer codes, in order.
type SurveyQuestion struct {
	LinkID  string
	Answers []string
}

// Survey is the three questions.
var Survey = []SurveyQuestion{
	{"see-hear", []string{"5", "4", "3", "2", "1"}}, // how well they saw and heard the clinician, 5 best
	{"needs-met", []string{"yes", "partly", "no"}},
	{"again", []string{"yes", "no"}},
}

// SurveyID is the id of a visit's survey answers.
func SurveyID(appointment string) string { return "visit-survey-" + appointment }

// After is what the patient's side sees after a visit written back.
type After struct {
	Summary  string
	Tasks    []Task
	Surveyed bool
}

// Task is a follow-up as the patient reads it.
type Task struct {
	Code, Text, Status string
}

// After reads a visit's write-back for the person through the gateway
// (decided and audited); nil when there is none, or they may not see it.
func (rs *Records) After(ctx context.Context, gw *clinical.Gateway, req clinical.Request, appointment string) (*After, error) {
	if _, err := gw.Read(ctx, req, "Encounter", EncounterID(appointment)); err != nil {
		if code := apperr.CodeOf(err); code == apperr.NotFound || code == apperr.Gone || code == apperr.Forbidden {
			return nil, nil
		}
		return nil, err
	}
	out := &After{}
	doc, err := gw.Read(ctx, req, "DocumentReference", SummaryID(appointment))
	if err == nil {
		var body struct {
			Content []struct {
				Attachment struct {
					Data string `json:"data"`
				} `json:"attachment"`
			} `json:"content"`
		}
		if json.Unmarshal(doc.Raw, &body) == nil && len(body.Content) > 0 {
			b, _ := base64.StdEncoding.DecodeString(body.Content[0].Attachment.Data)
			out.Summary = string(b)
		}
	}
	for _, f := range append(slices.Clone(FollowUps), FollowUp{Code: "other"}) {
		r, err := gw.Read(ctx, req, "Task", TaskID(appointment, f.Code))
		if err != nil {
			continue
		}
		var body struct {
			Status      string `json:"status"`
			Description string `json:"description"`
		}
		if json.Unmarshal(r.Raw, &body) == nil {
			out.Tasks = append(out.Tasks, Task{Code: f.Code, Text: body.Description, Status: body.Status})
		}
	}
	if _, err := rs.Store.Read(ctx, "QuestionnaireResponse", SurveyID(appointment)); err == nil {
		out.Surveyed = true
	}
	return out, nil
}

// Answer records the survey (each answer one of the question's codes,
// or left out), decided as the person's Write for the patient.
func (rs *Records) Answer(ctx context.Context, gw *clinical.Gateway, req clinical.Request, appointment, patient string, answers map[string]string) error {
	items := []any{}
	for _, q := range Survey {
		a := answers[q.LinkID]
		if a == "" {
			continue
		}
		if !slices.Contains(q.Answers, a) {
			return wrapError(q.LinkID, "survey-answer", "choose one of the answers")
		}
		items = append(items, map[string]any{"linkId": q.LinkID,
			"answer": []any{map[string]any{"valueCoding": map[string]any{"system": SurveyQuestionnaire, "code": a}}}})
	}
	if len(items) == 0 {
		return wrapError("", "survey-empty", "answer at least one question")
	}
	if req.Principal.Role != "" {
		return apperr.New(apperr.Forbidden, "the survey is for the patient's side")
	}
	if _, err := rs.Store.Read(ctx, "Encounter", EncounterID(appointment)); err != nil {
		return apperr.New(apperr.NotFound, "this visit has no survey: it was not held by video, or not written back yet")
	}
	dec, req, err := gw.Decide(ctx, req, access.Write, access.Target{Type: "QuestionnaireResponse", ID: SurveyID(appointment), Patients: []string{patient}})
	if err != nil {
		return err
	}
	if !dec.Permit {
		if err := gw.Refused(ctx, req, dec.Reason); err != nil {
			return err
		}
		return apperr.New(apperr.Forbidden, "you cannot answer for this record")
	}
	if _, err := rs.Store.Read(ctx, "QuestionnaireResponse", SurveyID(appointment)); err == nil {
		return apperr.NewField(apperr.Conflict, "", "wrapup.survey-done", "the survey was answered already")
	}
	qr := map[string]any{"resourceType": "QuestionnaireResponse", "id": SurveyID(appointment), "status": "completed",
		"questionnaire": SurveyQuestionnaire, "subject": map[string]any{"reference": "Patient/" + patient},
		"encounter": map[string]any{"reference": "Encounter/" + EncounterID(appointment)},
		"authored":  rs.Rooms.DB.Now().UTC().Format(time.RFC3339), "author": map[string]any{"reference": req.Principal.User},
		"item": items}
	raw, err := json.Marshal(qr)
	if err != nil {
		return err
	}
	b := &fhir.Bundle{ResourceType: "Bundle", Type: "transaction", Entry: []*fhir.Entry{{Resource: raw,
		Request: &fhir.EntryRequest{Method: "PUT", URL: "QuestionnaireResponse/" + SurveyID(appointment)}}}}
	_, err = rs.Store.Process(ctx, b, store.BundleOptions{Import: true, Audit: func(ctx context.Context, tx *sqldb.Tx, _ *store.Result) error {
		rec := gw.AuditRecord(req, audit.SubtypeCreate, audit.Create)
		rec.Patient, rec.Reason = "Patient/"+patient, dec.Reason
		rec.Entities = []audit.Entity{{What: "QuestionnaireResponse/" + SurveyID(appointment)}, {What: "Appointment/" + appointment}}
		return rs.Audit.Stage(ctx, tx, rec)
	}})
	if err != nil {
		return fmt.Errorf("telehealth: survey: %w", err)
	}
	rs.Audit.Chain(ctx)
	return nil
}
