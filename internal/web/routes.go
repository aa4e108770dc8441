package web

import "net/http"

// routes lists every route of the portal.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.handle(s.showHome))
	mux.HandleFunc("GET /healthz", s.showHealth)
	mux.HandleFunc("GET /readyz", s.showReadiness)
	mux.HandleFunc("GET /static/{version}/{path...}", s.serveStatic)
	mux.HandleFunc("/", s.handle(s.showNotFound))
	return mux
}
