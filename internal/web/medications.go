package web

import (
	"net/http"

	"carefront/internal/access"
	"carefront/internal/clinical"
	"carefront/internal/identity"
	"carefront/internal/views"
)

// showMedications lists the medicines taken now and before, with the
// record's refill requests and their status.
func (s *Server) showMedications(w http.ResponseWriter, r *http.Request) error {
	v, req, err := s.buildMedications(w, r)
	if v == nil {
		return err
	}
	d := medicationsPage{Medications: v, Done: r.FormValue("done") == "refill"}
	if s.opts.Requests != nil && currentUser(r.Context()).account.Kind != identity.Staff {
		if d.Requests, err = s.opts.Requests.Mine(r.Context(), s.opts.Clinical, *req); err != nil {
			return err
		}
		dec, _, err := s.opts.Clinical.Decide(r.Context(), *req, access.Write, access.Target{Type: "Task", Patients: []string{req.Principal.Patient}, Focus: "MedicationRequest"})
		if err != nil {
			return err
		}
		d.CanAsk = dec.Permit
	}
	return s.render(w, r, "medications", s.recordPage(w, r, "meds.title", d))
}

func (s *Server) apiMedications(w http.ResponseWriter, r *http.Request) error {
	v, _, err := s.buildMedications(w, r)
	if v == nil {
		return err
	}
	return writeView(w, v)
}

func (s *Server) buildMedications(w http.ResponseWriter, r *http.Request) (*views.Medications, *clinical.Request, error) {
	u, req := s.patient(w, r)
	if u == nil {
		return nil, nil, nil
	}
	v, err := s.opts.Views.Medications(r.Context(), *req, s.lang(w, r))
	return v, req, err
}
