package appointments

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"carefront/internal/clinical/store"
	"carefront/internal/fhir"
)

type ref struct {
	Reference string `json:"reference"`
	Display   string `json:"display"`
}

type concept struct {
	Coding []struct {
		System  string `json:"system"`
		Code    string `json:"code"`
		Display string `json:"display"`
	} `json:"coding"`
	Text string `json:"text"`
}

func (c concept) code(system string) string {
	for _, cd := range c.Coding {
		if cd.System == system {
			return cd.Code
		}
	}
	if len(c.Coding) > 0 {
		return c.Coding[0].Code
	}
	return ""
}

func (c concept) name() string {
	if c.Text != "" {
		return c.Text
	}
	for _, cd := range c.Coding {
		if cd.Display != "" {
			return cd.Display
		}
	}
	return ""
}

type place struct {
	name, clinic string
	video        bool
	// phone is the place's phone number, else its clinic's.
	phone string
}

// telecom is a FHIR ContactPoint list.
type telecom []struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

func (t telecom) phone() string {
	for _, c := range t {
		if c.System == "phone" && c.Value != "" {
			return c.Value
		}
	}
	return ""
}

type schedule struct {
	clinician, location string
}

// directory reads the Schedules, Practitioners, Locations and
// Organizations Slots refer to, each once per call (no patient's data).
type directory struct {
	st        *store.Store
	schedules map[string]*schedule
	names     map[string]string
	places    map[string]place
}

func newDirectory(st *store.Store) *directory {
	return &directory{st: st, schedules: map[string]*schedule{}, names: map[string]string{}, places: map[string]place{}}
}

func (d *directory) read(ctx context.Context, typ, id string, v any) bool {
	r, err := d.st.Read(ctx, typ, id)
	if err != nil {
		return false
	}
	return json.Unmarshal(r.Raw, v) == nil
}

// name is a Practitioner's or Organization's name, or fallback.
func (d *directory) name(ctx context.Context, typ, id, fallback string) string {
	k := typ + "/" + id
	if n, ok := d.names[k]; ok {
		return n
	}
	var body struct {
		Name json.RawMessage `json:"name"`
	}
	n := fallback
	if d.read(ctx, typ, id, &body) {
		var human []struct {
			Text   string   `json:"text"`
			Family string   `json:"family"`
			Given  []string `json:"given"`
			Prefix []string `json:"prefix"`
		}
		var plain string
		if json.Unmarshal(body.Name, &plain) == nil && plain != "" {
			n = plain
		} else if json.Unmarshal(body.Name, &human) == nil && len(human) > 0 {
			h := human[0]
			if h.Text != "" {
				n = h.Text
			} else {
				n = strings.TrimSpace(strings.Join(append(append(h.Prefix, h.Given...), h.Family), " "))
				if typ == "Practitioner" && len(h.Prefix) == 0 {
					n = "Dr. " + n // clinicians with bookable time are addressed so
				}
			}
		}
	}
	d.names[k] = n
	return n
}

// location is a Location's name, whether it is a video visit, and the
// name of the clinic that runs it.
func (d *directory) location(ctx context.Context, id string) place {
	if p, ok := d.places[id]; ok {
		return p
	}
	var body struct {
		Name    string    `json:"name"`
		Mode    string    `json:"mode"`
		Type    []concept `json:"type"`
		Org     ref       `json:"managingOrganization"`
		Telecom telecom   `json:"telecom"`
	}
	var p place
	if d.read(ctx, "Location", id, &body) {
		p.name, p.phone = body.Name, body.Telecom.phone()
		for _, t := range body.Type {
			if t.code("http://terminology.hl7.org/CodeSystem/v3-RoleCode") == "VI" {
				p.video = true
			}
		}
		if typ, oid, ok := fhir.ParseRef(body.Org.Reference); ok && typ == "Organization" {
			p.clinic = d.name(ctx, typ, oid, "")
			var org struct {
				Telecom telecom `json:"telecom"`
			}
			if p.phone == "" && d.read(ctx, typ, oid, &org) {
				p.phone = org.Telecom.phone()
			}
		}
	}
	d.places[id] = p
	return p
}

func (d *directory) schedule(ctx context.Context, id string) *schedule {
	if s, ok := d.schedules[id]; ok {
		return s
	}
	var body struct {
		Actor []ref `json:"actor"`
	}
	s := &schedule{}
	if d.read(ctx, "Schedule", id, &body) {
		for _, a := range body.Actor {
			typ, aid, ok := fhir.ParseRef(a.Reference)
			switch {
			case !ok:
			case typ == "Practitioner":
				s.clinician = aid
			case typ == "Location":
				s.location = aid
			}
		}
	}
	d.schedules[id] = s
	return s
}

// slot reads a Slot resource with its Schedule's clinician and place.
func (d *directory) slot(ctx context.Context, r *fhir.Resource) (Slot, error) {
	var body struct {
		Schedule    ref       `json:"schedule"`
		Start       string    `json:"start"`
		End         string    `json:"end"`
		ServiceType []concept `json:"serviceType"`
	}
	if err := json.Unmarshal(r.Raw, &body); err != nil {
		return Slot{}, err
	}
	sl := Slot{ID: r.ID}
	sl.Start, _ = time.Parse(time.RFC3339, body.Start)
	sl.End, _ = time.Parse(time.RFC3339, body.End)
	if len(body.ServiceType) > 0 {
		sl.Type, sl.TypeName = body.ServiceType[0].code(VisitTypeSystem), body.ServiceType[0].name()
	}
	if _, sid, ok := fhir.ParseRef(body.Schedule.Reference); ok {
		sc := d.schedule(ctx, sid)
		sl.Clinician, sl.Location = sc.clinician, sc.location
		if sc.clinician != "" {
			sl.ClinicianName = d.name(ctx, "Practitioner", sc.clinician, "")
		}
		if sc.location != "" {
			p := d.location(ctx, sc.location)
			sl.Place, sl.Video, sl.Clinic = p.name, p.video, p.clinic
		}
	}
	return sl, nil
}
