package oauth

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"carefront/internal/clinical/store"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
)

// An app's grant is also a FHIR R4 Consent in the patient's record
// (scope patient-privacy, actor the app as Device/CLIENT with the role
// of information recipient, performer whoever granted it), written in
// the grant's transaction: active while the grant is, inactive once it
// is disconnected. It records the grant; the token's scopes and the
// grant's row enforce it, so the policy does not compile it as a rule
// (consent.ParseConsent skips ConsentPrefix), and a patient's own
// consents naming the app's Device bind it like anyone else.

// ConsentPrefix begins the id of every app grant's Consent.
const ConsentPrefix = "app-"

// ConsentTag marks an app grant's Consent (meta.tag, "system|code"):
// with the id prefix, a permit and the app as its only actor, it tells
// the policy this Consent records a grant (consent.ParseConsent).
const ConsentTag = "urn:carefront:consent-kind|app-grant"

// ConsentID is the id of the Consent that records grant id.
func ConsentID(grantID string) string { return ConsentPrefix + grantID }

// ConsentResource is the grant as a FHIR R4 Consent; appName is the
// app's name as registered.
func (g *Grant) ConsentResource(appName string, now time.Time) map[string]any {
	status := "active"
	if !g.Active(now) {
		status = "inactive"
	}
	prov := map[string]any{
		"type":   "permit",
		"period": map[string]any{"start": g.Created.UTC().Format(time.RFC3339), "end": g.Expires.UTC().Format(time.RFC3339)},
		"actor": []any{map[string]any{
			"role":      map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}}},
			"reference": map[string]any{"reference": "Device/" + g.ClientID, "display": appName},
		}},
		"action": []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}}}},
	}
	var classes []any
	all := false
	for _, s := range g.Scopes {
		if !s.Resource() {
			continue
		}
		if s.Type == "*" {
			all = true
		}
		c := map[string]any{"system": "http://hl7.org/fhir/resource-types", "code": s.Type}
		if !slices.ContainsFunc(classes, func(o any) bool { return o.(map[string]any)["code"] == s.Type }) {
			classes = append(classes, c)
		}
	}
	if len(classes) > 0 && !all {
		prov["class"] = classes
	}
	var scopes []string
	for _, s := range g.Scopes {
		scopes = append(scopes, s.String())
	}
	tagSystem, tagCode, _ := strings.Cut(ConsentTag, "|")
	return map[string]any{
		"resourceType": "Consent", "id": ConsentID(g.ID), "status": status,
		"meta":       map[string]any{"tag": []any{map[string]any{"system": tagSystem, "code": tagCode}}},
		"scope":      map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}}},
		"category":   []any{map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}}}},
		"patient":    map[string]any{"reference": "Patient/" + g.Patient},
		"performer":  []any{map[string]any{"reference": g.FHIRUser}},
		"dateTime":   g.Created.UTC().Format(time.RFC3339),
		"policyRule": map[string]any{"text": "SMART on FHIR authorization: " + strings.Join(scopes, " ")},
		"provision":  prov,
	}
}

// writeConsent runs fn in a transaction that also writes the grant's
// Consent as g stands at now, when the flow has a store; otherwise fn
// runs alone.
func (f *Flow) writeConsent(ctx context.Context, g *Grant, appName string, now time.Time, fn func(*sqldb.Tx) error) error {
	if f.Store == nil {
		return f.DB.Write(ctx, fn)
	}
	raw, err := json.Marshal(g.ConsentResource(appName, now))
	if err != nil {
		return err
	}
	b := &fhir.Bundle{ResourceType: "Bundle", Type: "transaction", Entry: []*fhir.Entry{{Resource: raw,
		Request: &fhir.EntryRequest{Method: "PUT", URL: "Consent/" + ConsentID(g.ID)}}}}
	_, err = f.Store.Process(ctx, b, store.BundleOptions{Import: true, Audit: func(ctx context.Context, tx *sqldb.Tx, _ *store.Result) error {
		return fn(tx)
	}})
	return err
}
