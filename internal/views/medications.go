package views

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"carefront/internal/clinical"
	"carefront/internal/fhir"
)

// Medications is the medications page: what the person takes now, and
// what they took before.
type Medications struct {
	Active []Medication `json:"active"`
	Past   []Medication `json:"past"`
}

// Medication is one prescription as a person reads it.
type Medication struct {
	// ID is the MedicationRequest's id, for asking for a refill.
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Instructions string    `json:"instructions,omitempty"`
	Prescriber   string    `json:"prescriber,omitempty"`
	Start        time.Time `json:"start,omitzero"`
	Status       string    `json:"status"`
	// RefillsLeft is nil when the record does not say.
	RefillsLeft *int      `json:"refillsLeft,omitempty"`
	LastFill    time.Time `json:"lastFill,omitzero"`
}

// Medications builds the medications page.
func (b *Builder) Medications(ctx context.Context, req clinical.Request, lang string) (*Medications, error) {
	return build(ctx, b, req, "medications", lang, func(s *session) (*Medications, error) { return s.medications(ctx, false) })
}

// activeStatuses are the MedicationRequest statuses of medicines taken now.
var activeStatuses = []string{"active", "on-hold", "draft"}

func (s *session) medications(ctx context.Context, activeOnly bool) (*Medications, error) {
	p := url.Values{"_sort": {"-authoredon"}, "_include": {"MedicationRequest:medication"}}
	if activeOnly {
		p.Set("status", "active")
	}
	var reqs, dispenses []map[string]any
	var rerr, derr error
	s.b.parallel(
		func() { reqs, _, rerr = s.search(ctx, "MedicationRequest", p, 300) },
		func() { dispenses, _, derr = s.search(ctx, "MedicationDispense", url.Values{}, 500) },
	)
	if rerr != nil {
		return nil, rerr
	}
	if derr != nil && !clinical.IsUnavailable(derr) {
		return nil, derr
	}
	fills := map[string][]time.Time{}
	for _, d := range dispenses {
		if str(d, "status") != "" && str(d, "status") != "completed" {
			continue
		}
		at := firstDate(d, "whenHandedOver", "whenPrepared")
		for _, ref := range list(d["authorizingPrescription"]) {
			if typ, id, ok := fhir.ParseRef(str(obj(ref), "reference")); ok && typ == "MedicationRequest" {
				fills[id] = append(fills[id], at)
			}
		}
	}
	out := &Medications{Active: []Medication{}, Past: []Medication{}}
	for _, r := range reqs {
		if str(r, "intent") == "plan" || str(r, "intent") == "proposal" {
			continue
		}
		m := Medication{ID: idOf(r), Name: conceptText(r["medicationCodeableConcept"]), Status: str(r, "status"),
			Instructions: instructions(list(r["dosageInstruction"]), s.lang), Start: firstDate(r, "authoredOn"),
			Prescriber: s.name(ctx, r["requester"])}
		if m.Name == "" {
			m.Name = s.name(ctx, r["medicationReference"])
		}
		if n, ok := float(obj(r["dispenseRequest"])["numberOfRepeatsAllowed"]); ok {
			left := int(n)
			if f := fills[idOf(r)]; len(f) > 1 {
				left = max(0, int(n)-(len(f)-1)) // the first fill is not a refill
			}
			m.RefillsLeft = &left
		}
		for _, f := range fills[idOf(r)] {
			if f.After(m.LastFill) {
				m.LastFill = f
			}
		}
		if slices.Contains(activeStatuses, m.Status) {
			out.Active = append(out.Active, m)
		} else if !activeOnly && m.Status != "entered-in-error" {
			out.Past = append(out.Past, m)
		}
	}
	return out, nil
}

// instructions are the dose instructions in words: the record's text, else
// built from the dose and timing.
func instructions(dosage []any, lang string) string {
	var parts []string
	for _, d := range dosage {
		dm := obj(d)
		if t := str(dm, "text"); t != "" {
			parts = append(parts, t)
			continue
		}
		if t := buildDose(dm, lang); t != "" {
			parts = append(parts, t)
		}
	}
	return strings.Join(parts, "; ")
}

func buildDose(d map[string]any, lang string) string {
	es := lang == "es"
	var b []string
	for _, dr := range list(d["doseAndRate"]) {
		if q := obj(obj(dr)["doseQuantity"]); q != nil {
			b = append(b, strings.TrimSpace(number(q["value"])+" "+unit(q)))
			break
		}
	}
	rep := obj(obj(d["timing"])["repeat"])
	freq, _ := float(rep["frequency"])
	period, _ := float(rep["period"])
	pu := str(rep, "periodUnit")
	units := map[string][2]string{"h": {"hour", "hora"}, "d": {"day", "día"}, "wk": {"week", "semana"}, "mo": {"month", "mes"}}
	if u, ok := units[pu]; ok && period > 0 {
		name := u[0]
		if es {
			name = u[1]
		}
		switch {
		case freq <= 1 && period == 1:
			if es {
				b = append(b, "una vez al "+name)
			} else {
				b = append(b, "once a "+name)
			}
		case period == 1:
			if es {
				b = append(b, fmt.Sprintf("%s veces al %s", number(freq), name))
			} else {
				b = append(b, fmt.Sprintf("%s times a %s", number(freq), name))
			}
		default:
			if es {
				b = append(b, fmt.Sprintf("cada %s %s", number(period), name+plural(period, "s")))
			} else {
				b = append(b, fmt.Sprintf("every %s %s", number(period), name+plural(period, "s")))
			}
		}
	}
	if r := conceptText(d["route"]); r != "" {
		b = append(b, r)
	}
	if asNeeded, _ := d["asNeededBoolean"].(bool); asNeeded || d["asNeededCodeableConcept"] != nil {
		if es {
			b = append(b, "si lo necesita")
		} else {
			b = append(b, "as needed")
		}
	}
	return strings.Join(b, ", ")
}

func plural(n float64, s string) string {
	if n == 1 {
		return ""
	}
	return s
}
