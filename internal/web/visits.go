package web

import (
	"net/http"

	"carefront/internal/views"
)

// showVisits renders the visits page.
func (s *Server) showVisits(w http.ResponseWriter, r *http.Request) error {
	v, err := s.buildVisits(w, r)
	if v == nil {
		return err
	}
	return s.render(w, r, "visits", s.recordPage(w, r, "visits.title", v))
}

func (s *Server) apiVisits(w http.ResponseWriter, r *http.Request) error {
	v, err := s.buildVisits(w, r)
	if v == nil {
		return err
	}
	return writeView(w, v)
}

func (s *Server) buildVisits(w http.ResponseWriter, r *http.Request) (*views.Visits, error) {
	u, req := s.patient(w, r)
	if u == nil {
		return nil, nil
	}
	return s.opts.Views.Visits(r.Context(), *req, s.lang(w, r))
}
