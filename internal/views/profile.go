package views

import (
	"context"
	"strings"
	"time"

	"carefront/internal/clinical"
	"carefront/internal/fhir"
)

// Profile is "My information": the person's details as the record holds
// them. It is the one view with contact details and an address.
type Profile struct {
	Name      string    `json:"name"`
	BirthDate time.Time `json:"birthDate,omitzero"`
	Phones    []string  `json:"phones,omitempty"`
	Emails    []string  `json:"emails,omitempty"`
	Address   []string  `json:"address,omitempty"`
	// Language is the preferred language as the record names it.
	Language string `json:"language,omitempty"`
	Pharmacy string `json:"pharmacy,omitempty"`
	// Clinician is the person's primary care clinician.
	Clinician string `json:"clinician,omitempty"`
}

// preferredPharmacyExt is FHIR's extension naming a patient's pharmacy.
const preferredPharmacyExt = "http://hl7.org/fhir/StructureDefinition/patient-preferredPharmacy"

// Profile builds "My information".
func (b *Builder) Profile(ctx context.Context, req clinical.Request, lang string) (*Profile, error) {
	return build(ctx, b, req, "profile", lang, func(s *session) (*Profile, error) { return s.profile(ctx, req.Principal.Patient) })
}

func (s *session) profile(ctx context.Context, patient string) (*Profile, error) {
	p, err := s.read(ctx, "Patient", patient)
	if err != nil {
		return nil, err
	}
	out := &Profile{Name: humanName(p["name"]), BirthDate: when(str(p, "birthDate"))}
	for _, t := range list(p["telecom"]) {
		tm := obj(t)
		if end := firstDate(obj(tm["period"]), "end"); !end.IsZero() && end.Before(s.b.now()) {
			continue // no longer in use
		}
		switch str(tm, "system") {
		case "phone", "sms":
			out.Phones = append(out.Phones, str(tm, "value"))
		case "email":
			out.Emails = append(out.Emails, str(tm, "value"))
		}
	}
	for _, a := range list(p["address"]) {
		am := obj(a)
		if str(am, "use") == "old" {
			continue
		}
		if t := str(am, "text"); t != "" {
			out.Address = strings.Split(t, "\n")
			break
		}
		for _, l := range list(am["line"]) {
			if s, ok := l.(string); ok {
				out.Address = append(out.Address, s)
			}
		}
		last := strings.TrimSpace(strings.Join(nonEmpty(str(am, "city"), str(am, "state"), str(am, "postalCode")), " "))
		if last != "" {
			out.Address = append(out.Address, last)
		}
		break
	}
	for _, c := range list(p["communication"]) {
		cm := obj(c)
		if pref, _ := cm["preferred"].(bool); pref || out.Language == "" {
			out.Language = conceptText(cm["language"])
		}
	}
	for _, e := range list(p["extension"]) {
		if str(obj(e), "url") == preferredPharmacyExt {
			out.Pharmacy = s.name(ctx, obj(e)["valueReference"])
		}
	}
	for _, g := range list(p["generalPractitioner"]) {
		if n := s.name(ctx, g); n != "" {
			out.Clinician = n
			break
		}
	}
	return out, nil
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// PatientFacts are a Patient resource's name, as people write it, and
// date of birth (zero when the record gives none): what a caregiver grant
// keeps of the patient it is for.
func PatientFacts(r *fhir.Resource) (name string, birth time.Time) {
	t, err := r.Tree()
	if err != nil {
		return "", time.Time{}
	}
	return humanName(t["name"]), when(str(t, "birthDate"))
}
