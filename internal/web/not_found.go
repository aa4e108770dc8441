package web

import (
	"net/http"

	"carefront/internal/apperr"
)

var errNotFound = apperr.New(apperr.NotFound, "Page not found.")

// showNotFound answers every path no route matches.
func (s *Server) showNotFound(w http.ResponseWriter, r *http.Request) error {
	return errNotFound
}
