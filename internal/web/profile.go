package web

import (
	"net/http"

	"carefront/internal/views"
)

// showProfile renders the profile page.
func (s *Server) showProfile(w http.ResponseWriter, r *http.Request) error {
	v, err := s.buildProfile(w, r)
	if v == nil {
		return err
	}
	return s.render(w, r, "profile", s.recordPage(w, r, "profile.title", v))
}

func (s *Server) apiProfile(w http.ResponseWriter, r *http.Request) error {
	v, err := s.buildProfile(w, r)
	if v == nil {
		return err
	}
	return writeView(w, v)
}

func (s *Server) buildProfile(w http.ResponseWriter, r *http.Request) (*views.Profile, error) {
	u, req := s.patient(w, r)
	if u == nil {
		return nil, nil
	}
	return s.opts.Views.Profile(r.Context(), *req, s.lang(w, r))
}
