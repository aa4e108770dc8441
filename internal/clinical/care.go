package clinical

import (
	"context"
	"net/url"
	"strings"
	"time"

	"carefront/internal/access"
	"carefront/internal/fhir"
)

// DefaultCareMonths is how far back an Appointment or Encounter with a
// clinician makes a care relationship, unless Gateway.CareMonths says.
const DefaultCareMonths = 24

// CaresFor reports whether practitioner ("Practitioner/ID") has a care
// relationship with the patient at now: a member of the patient's active
// CareTeam, or on an Appointment or Encounter of theirs that started
// within the look-back (an upcoming appointment counts). It is the
// decision point's information source for the clinician rule: it reads
// only whether such a record exists, never shows one, and is not an
// access of its own (the access it permits is audited).
func (g *Gateway) CaresFor(ctx context.Context, practitioner, patient string) (bool, error) {
	typ, id, ok := strings.Cut(practitioner, "/")
	if !ok || typ != "Practitioner" || !fhir.ValidID(id) || !fhir.ValidID(patient) {
		return false, nil
	}
	months := g.CareMonths
	if months <= 0 {
		months = DefaultCareMonths
	}
	since := g.now().AddDate(0, -months, 0).UTC().Format("2006-01-02")
	for _, c := range []struct {
		typ    string
		params url.Values
	}{
		{"CareTeam", url.Values{"participant": {practitioner}, "status": {"active"}}},
		{"Encounter", url.Values{"practitioner": {practitioner}, "date": {"ge" + since}}},
		{"Appointment", url.Values{"practitioner": {practitioner}, "date": {"ge" + since}}},
	} {
		q, err := fhir.ParseQuery(c.typ, c.params, false)
		if err != nil {
			return false, err
		}
		q.Count, q.Compartment = 50, patient
		page, err := g.Source.Search(ctx, q)
		if err != nil {
			return false, err
		}
		for _, r := range page.Matches {
			tree, err := r.Tree()
			if err != nil || !careStatus(r.Type, tree, g.now()) {
				continue
			}
			if t, err := g.target(r); err == nil && len(t.Patients) > 0 && t.Patients[0] == patient {
				return true, nil
			}
		}
	}
	return false, nil
}

// withCare resolves a clinician's care relationship for the request.
func (g *Gateway) withCare(ctx context.Context, p *access.Principal) error {
	if p.Role != access.RoleClinician || p.Patient == "" || p.CareRelationship || p.Practitioner == "" {
		return nil
	}
	ok, err := g.CaresFor(ctx, p.Practitioner, p.Patient)
	p.CareRelationship = ok
	return err
}

// careStatus reports whether a record shows care given or planned:
// cancelled, no-show and entered-in-error ones do not, nor an
// appointment more than a year ahead.
func careStatus(typ string, tree map[string]any, now time.Time) bool {
	status, _ := tree["status"].(string)
	switch status {
	case "cancelled", "noshow", "entered-in-error", "inactive":
		return false
	}
	if typ == "Appointment" {
		start, _ := tree["start"].(string)
		if r, ok := fhir.ParseDate(start); ok && time.UnixMicro(r.Lo).After(now.AddDate(1, 0, 0)) {
			return false
		}
	}
	return true
}
