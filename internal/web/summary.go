package web

import (
	"net/http"

	"carefront/internal/views"
)

// showSummary renders the summary page.
func (s *Server) showSummary(w http.ResponseWriter, r *http.Request) error {
	v, err := s.buildSummary(w, r)
	if v == nil {
		return err
	}
	return s.render(w, r, "summary", s.recordPage(w, r, "summary.title", v))
}

func (s *Server) apiSummary(w http.ResponseWriter, r *http.Request) error {
	v, err := s.buildSummary(w, r)
	if v == nil {
		return err
	}
	return writeView(w, v)
}

func (s *Server) buildSummary(w http.ResponseWriter, r *http.Request) (*views.Summary, error) {
	u, req := s.patient(w, r)
	if u == nil {
		return nil, nil
	}
	return s.opts.Views.Summary(r.Context(), *req, s.lang(w, r))
}
