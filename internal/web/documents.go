package web

import (
	"net/http"

	"carefront/internal/views"
)

// showDocuments renders the documents page.
func (s *Server) showDocuments(w http.ResponseWriter, r *http.Request) error {
	v, err := s.buildDocuments(w, r)
	if v == nil {
		return err
	}
	return s.render(w, r, "documents", s.recordPage(w, r, "docs.title", v))
}

func (s *Server) apiDocuments(w http.ResponseWriter, r *http.Request) error {
	v, err := s.buildDocuments(w, r)
	if v == nil {
		return err
	}
	return writeView(w, v)
}

func (s *Server) buildDocuments(w http.ResponseWriter, r *http.Request) (*views.Documents, error) {
	u, req := s.patient(w, r)
	if u == nil || s.shares(w, r, req, "DocumentReference") {
		return nil, nil
	}
	return s.opts.Views.Documents(r.Context(), *req, s.lang(w, r))
}
