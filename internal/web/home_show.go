package web

import "net/http"

// showHome renders the public home page: what the portal is, in plain
// language, and the way in.
func (s *Server) showHome(w http.ResponseWriter, r *http.Request) error {
	return s.render(w, r, "home", s.newPage(w, r, "home.title"))
}
