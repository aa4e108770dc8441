package telehealth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/clinical/store"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
)

// Join window defaults: a video visit opens this long before its start
// and stays open this long after its planned end.
const (
	DefaultJoinEarly = 15 * time.Minute
	DefaultJoinGrace = 30 * time.Minute
)

// Window is when a video visit can be joined.
type Window struct {
	Early, Grace time.Duration
}

// Opens is when the visit starting at start can first be joined.
func (w Window) Opens(start time.Time) time.Time { return start.Add(-w.Early) }

// Closes is when the visit planned to end at end can last be joined.
func (w Window) Closes(end time.Time) time.Time { return end.Add(w.Grace) }

// Open reports whether a visit from start to end can be joined at now.
func (w Window) Open(start, end, now time.Time) bool {
	return !now.Before(w.Opens(start)) && now.Before(w.Closes(end))
}

// ICEServer is one STUN or TURN server a browser may use
// (RTCIceServer).
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Refusals of a join that the visit's page explains.
var (
	ErrNotVideo   = apperr.New(apperr.NotFound, "this visit is not a video visit")
	ErrNotOnVisit = apperr.New(apperr.Forbidden, "you are not on this visit's list of participants")
	ErrNoVisits   = apperr.New(apperr.Forbidden, "your access to this record does not include visits; the person whose record it is can add visits on their Sharing page")
)

// Consents records a patient's agreement to be seen by video: once,
// before their first video visit, kept in their record as a Consent
// (scope treatment), by whoever agreed (the patient, or a caregiver for
// them).
type Consents struct {
	Store *store.Store
	Audit *audit.Writer
}

const (
	sysConsentScope = "http://terminology.hl7.org/CodeSystem/consentscope"
	sysCategory     = "https://carefront.example/CodeSystem/consent-category"
)

func consentID(patient string) string {
	h := sha256.Sum256([]byte("telehealth\x00" + patient))
	return "telehealth-" + hex.EncodeToString(h[:20])
}

// Agreed reports when the patient's consent to video visits was given
// (zero when never).
func (c *Consents) Agreed(ctx context.Context, patient string) (time.Time, error) {
	r, err := c.Store.Read(ctx, "Consent", consentID(patient))
	switch apperr.CodeOf(err) {
	case apperr.NotFound, apperr.Gone:
		return time.Time{}, nil
	case "":
	default:
		return time.Time{}, err
	}
	var body struct {
		Status   string `json:"status"`
		DateTime string `json:"dateTime"`
		Patient  struct {
			Reference string `json:"reference"`
		} `json:"patient"`
	}
	if err := json.Unmarshal(r.Raw, &body); err != nil || body.Status != "active" || body.Patient.Reference != "Patient/"+patient {
		return time.Time{}, err
	}
	at, _ := time.Parse(time.RFC3339, body.DateTime)
	return at, nil
}

// Agree records the consent, given by who ("Person/ID") at addr.
func (c *Consents) Agree(ctx context.Context, patient, who, addr string, now time.Time) error {
	id := consentID(patient)
	res := map[string]any{"resourceType": "Consent", "id": id, "status": "active",
		"scope": map[string]any{"coding": []any{map[string]any{"system": sysConsentScope, "code": "treatment"}}},
		"category": []any{
			map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}}},
			map[string]any{"coding": []any{map[string]any{"system": sysCategory, "code": "telehealth", "display": "Video visits"}}, "text": "Consent to video visits"}},
		"patient":  map[string]any{"reference": "Patient/" + patient},
		"dateTime": now.UTC().Format(time.RFC3339),
		"policyRule": map[string]any{"text": "Video visits are private, between the people the clinician lets in, and are not recorded. " +
			"A video visit may not be right for every problem; the clinician may ask to see you in person."},
		"provision": map[string]any{"type": "permit",
			"purpose": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}}},
	}
	raw, err := json.Marshal(res)
	if err != nil {
		return err
	}
	b := &fhir.Bundle{ResourceType: "Bundle", Type: "transaction", Entry: []*fhir.Entry{{Resource: raw, Request: &fhir.EntryRequest{Method: "PUT", URL: "Consent/" + id}}}}
	_, err = c.Store.Process(ctx, b, store.BundleOptions{Import: true, Audit: func(ctx context.Context, tx *sqldb.Tx, _ *store.Result) error {
		return c.Audit.Stage(ctx, tx, audit.Record{Type: audit.TypeRESTful, Subtype: []audit.Coding{audit.SubtypeUpdate, SubtypeVideoVisit},
			Action: audit.Update, Outcome: audit.Success, Reason: "telehealth-consent", User: who, Address: addr,
			Patient: "Patient/" + patient, Entities: []audit.Entity{{What: "Consent/" + id}}})
	}})
	if err != nil {
		return fmt.Errorf("telehealth: consent: %w", err)
	}
	c.Audit.Chain(ctx)
	return nil
}
