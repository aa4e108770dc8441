package web

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// showReadiness answers readiness probes: 200 when the database answers and
// every migration is applied, 503 otherwise. The body names the failing
// check but not its internal error, which goes to the log.
func (s *Server) showReadiness(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	status, body := http.StatusOK, map[string]string{"status": "ready"}
	if s.opts.Ready != nil {
		if err := s.opts.Ready(ctx); err != nil {
			s.log.WarnContext(r.Context(), "not ready", "err", err)
			status, body = http.StatusServiceUnavailable, map[string]string{"status": "not ready"}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}
