package web

import (
	"encoding/hex"
	"net/http"
)

func (s *Server) submitSignOut(w http.ResponseWriter, r *http.Request) error {
	if err := s.endSession(w, r); err != nil {
		return err
	}
	return redirect(w, r, "/")
}

// endSession ends the browser's session, if any, and clears its cookie.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request) error {
	if u := currentUser(r.Context()); u != nil {
		if err := s.opts.Sessions.End(r.Context(), u.token); err != nil {
			return err
		}
		if err := s.opts.Auth.SessionEvent(r.Context(), u.account, true, "signed-out", clientAddr(r), hex.EncodeToString(u.session.IDHash)); err != nil {
			return err
		}
	}
	http.SetCookie(w, s.opts.Sessions.ClearCookie())
	return nil
}
