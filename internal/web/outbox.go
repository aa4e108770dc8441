package web

import (
	"net/http"
)

// showOutbox lists the emails carefront would have sent (demo mode only).
func (s *Server) showOutbox(w http.ResponseWriter, r *http.Request) error {
	f := newForm()
	f.Extra["Messages"] = s.opts.Outbox.Messages()
	return s.showForm(w, r, "outbox", "outbox.title", f, http.StatusOK)
}
