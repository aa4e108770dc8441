package web

import (
	"net/http"
	"slices"

	"carefront/internal/access"
	"carefront/internal/clinical"
	"carefront/internal/identity"
	"carefront/internal/views"
)

// visitsPage is the visits view with whether the person may book.
type visitsPage struct {
	*views.Visits
	CanBook bool
	// CheckedIn says which upcoming visits are checked in (by
	// Appointment id).
	CheckedIn map[string]bool
}

// showVisits renders the visits page, with "Book a visit" for those who
// may book for the record.
func (s *Server) showVisits(w http.ResponseWriter, r *http.Request) error {
	v, req, err := s.buildVisits(w, r)
	if v == nil {
		return err
	}
	// Booked visits (an Appointment's start is an instant) are shown in
	// the clinic's time zone, as on their own page and in reminders; an
	// Encounter's time may be a date alone, and stays as the record gives
	// it. The view may be cached: change a copy.
	local := *v
	local.Upcoming = slices.Clone(v.Upcoming)
	for i := range local.Upcoming {
		if local.Upcoming[i].Appointment != "" {
			local.Upcoming[i].Start, local.Upcoming[i].End = local.Upcoming[i].Start.In(s.zone()), local.Upcoming[i].End.In(s.zone())
		}
	}
	d := visitsPage{Visits: &local}
	if u := currentUser(r.Context()); s.opts.Appointments != nil && u.account.Kind != identity.Staff {
		dec, _, err := s.opts.Clinical.Decide(r.Context(), *req, access.Write, access.Target{Type: "Appointment", Patients: []string{req.Principal.Patient}})
		if err != nil {
			return err
		}
		d.CanBook = dec.Permit
	}
	if s.opts.CheckIn != nil {
		var ids []string
		for _, up := range v.Upcoming {
			if up.Appointment != "" {
				ids = append(ids, up.Appointment)
			}
		}
		at, err := s.opts.CheckIn.CheckedIn(r.Context(), ids)
		if err != nil {
			return err
		}
		d.CheckedIn = map[string]bool{}
		for id := range at {
			d.CheckedIn[id] = true
		}
	}
	return s.render(w, r, "visits", s.recordPage(w, r, "visits.title", d))
}

func (s *Server) apiVisits(w http.ResponseWriter, r *http.Request) error {
	v, _, err := s.buildVisits(w, r)
	if v == nil {
		return err
	}
	return writeView(w, v)
}

func (s *Server) buildVisits(w http.ResponseWriter, r *http.Request) (*views.Visits, *clinical.Request, error) {
	u, req := s.patient(w, r)
	if u == nil || s.shares(w, r, req, "Appointment") {
		return nil, nil, nil
	}
	v, err := s.opts.Views.Visits(r.Context(), *req, s.lang(w, r))
	return v, req, err
}
