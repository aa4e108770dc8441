package views

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"time"

	"carefront/internal/clinical"
	"carefront/internal/fhir"
)

// Visits is the visits page: what is coming up, and past visits with
// their summaries.
type Visits struct {
	Upcoming []Visit `json:"upcoming"`
	Past     []Visit `json:"past"`
	// Unavailable names the parts a source could not give.
	Unavailable []Block `json:"unavailable,omitempty"`
}

// Visit is one appointment or encounter.
type Visit struct {
	Start     time.Time `json:"start,omitzero"`
	End       time.Time `json:"end,omitzero"`
	Type      string    `json:"type,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Clinician string    `json:"clinician,omitempty"`
	Place     string    `json:"place,omitempty"`
	Video     bool      `json:"video"`
	// Status is the appointment's or encounter's status code.
	Status string `json:"status"`
	// Summary is the id of the visit's summary document, for its link.
	Summary string `json:"summary,omitempty"`
	// Appointment is the id of an upcoming visit's Appointment, for its
	// page (details, calendar file, changes).
	Appointment string `json:"appointment,omitempty"`
	// Ref is a past visit's Encounter ("Encounter/ID"), which the patient
	// can ask to correct.
	Ref string `json:"ref,omitempty"`
}

// visitModeExt is the extension the demo and carefront's own bookings use
// to say how a visit is held.
const visitModeExt = "https://carefront.example/fhir/StructureDefinition/visit-mode"

// Visits builds the visits page.
func (b *Builder) Visits(ctx context.Context, req clinical.Request, lang string) (*Visits, error) {
	return build(ctx, b, req, "visits", lang, func(s *session) (*Visits, error) { return s.visits(ctx) })
}

func (s *session) visits(ctx context.Context) (*Visits, error) {
	now := s.b.now()
	var appts, encs, docs []map[string]any
	var aerr, eerr, derr error
	s.b.parallel(
		func() { appts, _, aerr = s.search(ctx, "Appointment", url.Values{"_sort": {"-date"}}, 200) },
		func() { encs, _, eerr = s.search(ctx, "Encounter", url.Values{"_sort": {"-date"}}, 300) },
		func() { docs, _, derr = s.search(ctx, "DocumentReference", url.Values{"_sort": {"-date"}}, 300) },
	)
	out := &Visits{Upcoming: []Visit{}, Past: []Visit{}}
	for _, e := range []struct {
		err   error
		block Block
	}{{aerr, BlockAppointments}, {eerr, BlockEncounters}, {derr, BlockEncounters}} {
		un, fatal := blockErr(e.err)
		if fatal != nil {
			return nil, fatal
		}
		if un && !slices.Contains(out.Unavailable, e.block) {
			out.Unavailable = append(out.Unavailable, e.block)
		}
	}
	summaries := map[string]string{} // encounter id -> document id
	for _, d := range docs {
		for _, e := range list(obj(d["context"])["encounter"]) {
			if typ, id, ok := fhir.ParseRef(str(obj(e), "reference")); ok && typ == "Encounter" {
				if _, seen := summaries[id]; !seen {
					summaries[id] = idOf(d)
				}
			}
		}
	}
	for _, a := range appts {
		v := s.appointment(ctx, a)
		v.Appointment = idOf(a)
		switch {
		case v.Status == "cancelled" || v.Status == "noshow" || v.Status == "entered-in-error":
			continue
		case !v.Start.Before(now.Add(-time.Hour)) && v.Status != "fulfilled":
			out.Upcoming = append(out.Upcoming, v)
		}
	}
	slices.SortFunc(out.Upcoming, func(a, b Visit) int { return a.Start.Compare(b.Start) })
	for _, e := range encs {
		v := s.encounter(ctx, e)
		if v.Status == "cancelled" || v.Status == "entered-in-error" {
			continue
		}
		if v.Status == "planned" && v.Start.After(now) {
			out.Upcoming = append(out.Upcoming, v)
			continue
		}
		v.Summary = summaries[idOf(e)]
		v.Ref = "Encounter/" + idOf(e)
		out.Past = append(out.Past, v)
	}
	return out, nil
}

// appointment reads an Appointment.
func (s *session) appointment(ctx context.Context, a map[string]any) Visit {
	var actors []any
	for _, p := range list(a["participant"]) {
		actors = append(actors, obj(p)["actor"])
	}
	s.prefetch(ctx, actors...)
	v := Visit{Start: firstDate(a, "start"), End: firstDate(a, "end"), Status: str(a, "status"),
		Type: firstConcept(a["serviceType"]), Reason: str(a, "description")}
	if v.Type == "" {
		v.Type = conceptText(a["appointmentType"])
	}
	for _, ext := range list(a["extension"]) {
		if str(obj(ext), "url") == visitModeExt && str(obj(ext), "valueCode") == "video" {
			v.Video = true
		}
	}
	for _, p := range list(a["participant"]) {
		actor := obj(obj(p)["actor"])
		typ, id, _ := fhir.ParseRef(str(actor, "reference"))
		switch typ {
		case "Practitioner", "PractitionerRole":
			if v.Clinician == "" {
				v.Clinician = s.name(ctx, actor)
			}
		case "Location":
			if v.Place == "" {
				v.Place = s.name(ctx, actor)
			}
			if s.virtual(ctx, id) {
				v.Video = true
			}
		}
	}
	if v.Video {
		v.Place = ""
	}
	return v
}

// virtual reports whether a Location is a virtual one (v3 RoleCode VI).
func (s *session) virtual(ctx context.Context, id string) bool {
	s.name(ctx, map[string]any{"reference": "Location/" + id}) // reads it once
	s.mu.Lock()
	loc := s.dir["Location/"+id]
	s.mu.Unlock()
	for _, t := range list(loc["type"]) {
		if codeIn(t, "http://terminology.hl7.org/CodeSystem/v3-RoleCode") == "VI" {
			return true
		}
	}
	return false
}

// encounter reads an Encounter.
func (s *session) encounter(ctx context.Context, e map[string]any) Visit {
	v := Visit{Start: firstDate(obj(e["period"]), "start"), End: firstDate(obj(e["period"]), "end"),
		Status: str(e, "status"), Type: firstConcept(e["type"]), Reason: firstConcept(e["reasonCode"])}
	if c := obj(e["class"]); str(c, "code") == "VR" || strings.EqualFold(str(c, "code"), "virtual") {
		v.Video = true
	}
	for _, p := range list(e["participant"]) {
		if n := s.name(ctx, obj(p)["individual"]); n != "" {
			v.Clinician = n
			break
		}
	}
	for _, l := range list(e["location"]) {
		if n := s.name(ctx, obj(l)["location"]); n != "" {
			v.Place = n
			break
		}
	}
	if v.Place == "" {
		v.Place = s.name(ctx, e["serviceProvider"])
	}
	return v
}
