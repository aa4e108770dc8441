package consent

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"carefront/internal/access"
	"carefront/internal/fhir"
)

// Consent resources: every caregiver grant is also a FHIR R4 Consent in
// carefront's own store (scope patient-privacy), versioned as it changes
// (proposed while the invitation waits, active once accepted, inactive
// once ended), so the patient's record holds who they share it with, and
// the policy compiles every privacy Consent the same way, the clinic's
// own included.

// Code systems of the Consent resources.
const (
	sysConsentScope    = "http://terminology.hl7.org/CodeSystem/consentscope"
	sysConsentCategory = "http://loinc.org"
	sysResourceTypes   = "http://hl7.org/fhir/resource-types"
	sysActCode         = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	sysRoleCode        = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
	sysConsentAction   = "http://terminology.hl7.org/CodeSystem/consentaction"
)

// NeverKinds are the sensitive kinds a patient may keep from a caregiver
// whatever else a grant covers, by the names forms use, each as its
// sensitivity code.
var NeverKinds = map[string]string{
	"mental-health": "PSY",
	"substance-use": "ETH",
	"hiv":           "HIV",
	"sexual-health": "SEX",
}

// NeverNames lists NeverKinds in the order forms show them.
var NeverNames = []string{"mental-health", "substance-use", "hiv", "sexual-health"}

// RelatedPerson is the RelatedPerson that stands for the caregiver of a
// grant in the patient's record (their fhirUser for apps).
func RelatedPerson(grantID string) string {
	return "RelatedPerson/rp-" + strings.TrimPrefix(grantID, "grant-")
}

// status is the Consent status for the grant at now.
func (g Grant) status(now time.Time) string {
	switch {
	case !g.Revoked.IsZero() || !now.Before(g.End()):
		return "inactive"
	case g.Pending():
		return "proposed"
	}
	return "active"
}

// ConsentResource is the grant as a FHIR R4 Consent at now.
func (g Grant) ConsentResource(now time.Time) map[string]any {
	actor := map[string]any{"identifier": map[string]any{"system": "urn:carefront:caregiver-grant", "value": g.ID}}
	if !g.Pending() {
		actor = map[string]any{"reference": RelatedPerson(g.ID)}
	}
	prov := map[string]any{
		"type":   "permit",
		"period": map[string]any{"start": g.Created.UTC().Format(time.RFC3339), "end": g.End().UTC().Format(time.RFC3339)},
		"actor": []any{map[string]any{
			"role":      map[string]any{"coding": []any{map[string]any{"system": sysRoleCode, "code": "DELEGATEE"}}},
			"reference": actor,
		}},
		"action": []any{map[string]any{"coding": []any{map[string]any{"system": sysConsentAction, "code": "access"}}}},
	}
	var classes []any
	for _, t := range g.Kinds {
		classes = append(classes, map[string]any{"system": sysResourceTypes, "code": t})
	}
	if len(classes) > 0 {
		prov["class"] = classes
	}
	var nested []any
	for _, l := range g.DenyLabels {
		if l == "SEX" {
			nested = append(nested, map[string]any{"type": "deny",
				"securityLabel": []any{map[string]any{"system": sysActCode, "code": "STD"}}})
		}
		nested = append(nested, map[string]any{"type": "deny",
			"securityLabel": []any{map[string]any{"system": sysActCode, "code": l}}})
	}
	if len(nested) > 0 {
		prov["provision"] = nested
	}
	return map[string]any{
		"resourceType": "Consent", "id": g.ID, "status": g.status(now),
		"scope":     map[string]any{"coding": []any{map[string]any{"system": sysConsentScope, "code": "patient-privacy"}}},
		"category":  []any{map[string]any{"coding": []any{map[string]any{"system": sysConsentCategory, "code": "59284-0", "display": "Patient Consent"}}}},
		"patient":   map[string]any{"reference": "Patient/" + g.Patient},
		"dateTime":  g.Created.UTC().Format(time.RFC3339),
		"provision": prov,
	}
}

// The marks of a Consent that records an app's grant (oauth.ConsentPrefix
// and oauth.ConsentTag).
const (
	appConsentPrefix    = "app-"
	appConsentTagSystem = "urn:carefront:consent-kind"
	appConsentTagCode   = "app-grant"
)

// appGrant reports whether a Consent records an app's grant and nothing
// more: the id and tag carefront gives them, a permit with no
// exceptions, and apps (Device) as its only actors. Skipping such a
// Consent can only narrow what anyone sees; a Consent that denies, or
// names anyone else, is never skipped whatever its id or tag.
func appGrant(tree map[string]any) bool {
	id, _ := tree["id"].(string)
	meta, _ := tree["meta"].(map[string]any)
	p, _ := tree["provision"].(map[string]any)
	if !strings.HasPrefix(id, appConsentPrefix) || p == nil || p["type"] != "permit" || len(list(p["provision"])) > 0 ||
		!slices.ContainsFunc(list(meta["tag"]), func(t any) bool {
			m, _ := t.(map[string]any)
			return str(m["system"]) == appConsentTagSystem && str(m["code"]) == appConsentTagCode
		}) {
		return false
	}
	actors := list(p["actor"])
	for _, a := range actors {
		m, _ := a.(map[string]any)
		ref, _ := m["reference"].(map[string]any)
		if !strings.HasPrefix(str(ref["reference"]), "Device/") {
			return false
		}
	}
	return len(actors) > 0
}

// ParseConsent reads a Consent resource into the decision's terms: only
// an active privacy consent (scope patient-privacy) with a provision
// applies.
func ParseConsent(tree map[string]any) (c access.Consent, ok bool) {
	if tree["resourceType"] != "Consent" || tree["status"] != "active" || !hasCoding(tree["scope"], sysConsentScope, "patient-privacy") {
		return access.Consent{}, false
	}
	c.ID, _ = tree["id"].(string)
	if appGrant(tree) {
		// An app's grant, recorded as a Consent: the token's scopes and the
		// grant enforce it, and its permit must never outrank another
		// consent (nor stand as a Part 2 consent).
		return access.Consent{}, false
	}
	c.Date = parseTime(str(tree["dateTime"]))
	p, _ := tree["provision"].(map[string]any)
	if p == nil {
		return access.Consent{}, false
	}
	c.Provision = parseProvision(p)
	// A caregiver grant's own Consent is a delegation (access.Consent).
	c.Delegation = strings.HasPrefix(c.ID, "grant-") && hasCoding(map[string]any{"coding": roleCodings(p)}, sysRoleCode, "DELEGATEE")
	return c, true
}

func parseProvision(p map[string]any) access.Provision {
	out := access.Provision{Permit: p["type"] == "permit"}
	if per, _ := p["period"].(map[string]any); per != nil {
		out.From, out.To = parseTime(str(per["start"])), parseTime(str(per["end"]))
	}
	for _, a := range list(p["actor"]) {
		ref, _ := a.(map[string]any)["reference"].(map[string]any)
		switch {
		case ref == nil:
		case str(ref["reference"]) != "":
			out.Actors = append(out.Actors, str(ref["reference"]))
		default:
			if id, _ := ref["identifier"].(map[string]any); id != nil {
				out.Actors = append(out.Actors, str(id["system"])+"|"+str(id["value"]))
			}
		}
	}
	for _, a := range list(p["action"]) {
		for _, cd := range list(a.(map[string]any)["coding"]) {
			out.Actions = append(out.Actions, str(cd.(map[string]any)["code"]))
		}
	}
	for _, a := range list(p["purpose"]) {
		out.Purposes = append(out.Purposes, str(a.(map[string]any)["code"]))
	}
	for _, a := range list(p["class"]) {
		out.Classes = append(out.Classes, str(a.(map[string]any)["code"]))
	}
	for _, a := range list(p["code"]) {
		for _, cd := range list(a.(map[string]any)["coding"]) {
			m := cd.(map[string]any)
			out.Codes = append(out.Codes, str(m["system"])+"|"+str(m["code"]))
		}
	}
	for _, a := range list(p["securityLabel"]) {
		m := a.(map[string]any)
		out.Labels = append(out.Labels, str(m["system"])+"|"+str(m["code"]))
	}
	for _, n := range list(p["provision"]) {
		if m, ok := n.(map[string]any); ok {
			out.Provisions = append(out.Provisions, parseProvision(m))
		}
	}
	return out
}

// roleCodings are the codings of a provision's actor roles.
func roleCodings(p map[string]any) []any {
	var out []any
	for _, a := range list(p["actor"]) {
		role, _ := a.(map[string]any)["role"].(map[string]any)
		out = append(out, list(role["coding"])...)
	}
	return out
}

func hasCoding(v any, system, code string) bool {
	m, _ := v.(map[string]any)
	return slices.ContainsFunc(list(m["coding"]), func(c any) bool {
		cm, _ := c.(map[string]any)
		return str(cm["system"]) == system && str(cm["code"]) == code
	})
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	r, ok := fhir.ParseDate(s)
	if !ok {
		return time.Time{}
	}
	return time.UnixMicro(r.Lo).UTC()
}

// consentBundle is a transaction Bundle that writes the grant's Consent
// (and, once accepted, the caregiver's RelatedPerson) at now.
func consentBundle(g Grant, now time.Time) (*fhir.Bundle, error) {
	b := &fhir.Bundle{ResourceType: "Bundle", Type: "transaction"}
	add := func(typ, id string, r map[string]any) error {
		raw, err := json.Marshal(r)
		if err != nil {
			return err
		}
		b.Entry = append(b.Entry, &fhir.Entry{Resource: raw, Request: &fhir.EntryRequest{Method: "PUT", URL: typ + "/" + id}})
		return nil
	}
	if err := add("Consent", g.ID, g.ConsentResource(now)); err != nil {
		return nil, err
	}
	if !g.Pending() {
		rp := strings.TrimPrefix(RelatedPerson(g.ID), "RelatedPerson/")
		if err := add("RelatedPerson", rp, map[string]any{"resourceType": "RelatedPerson", "id": rp, "active": g.status(now) == "active",
			"patient":      map[string]any{"reference": "Patient/" + g.Patient},
			"relationship": []any{map[string]any{"coding": []any{map[string]any{"system": sysRoleCode, "code": "DELEGATEE"}}}},
			"telecom":      []any{map[string]any{"system": "email", "value": g.Email}}}); err != nil {
			return nil, err
		}
	}
	return b, nil
}
