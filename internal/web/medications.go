package web

import (
	"net/http"

	"carefront/internal/views"
)

// showMedications lists the medicines taken now and before.
func (s *Server) showMedications(w http.ResponseWriter, r *http.Request) error {
	v, err := s.buildMedications(w, r)
	if v == nil {
		return err
	}
	return s.render(w, r, "medications", s.recordPage(w, r, "meds.title", v))
}

func (s *Server) apiMedications(w http.ResponseWriter, r *http.Request) error {
	v, err := s.buildMedications(w, r)
	if v == nil {
		return err
	}
	return writeView(w, v)
}

func (s *Server) buildMedications(w http.ResponseWriter, r *http.Request) (*views.Medications, error) {
	u, req := s.patient(w, r)
	if u == nil {
		return nil, nil
	}
	return s.opts.Views.Medications(r.Context(), *req, s.lang(w, r))
}
