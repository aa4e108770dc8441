package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"carefront/internal/apperr"
	"carefront/internal/identity"
	"carefront/internal/session"
)

// Sign-in with email and password (the first step), and the notice of a
// sign-in from a new browser.

// A sign-in may carry where to go once both steps are done (return, a
// local path: an app's authorization screen).
func (s *Server) showSignIn(w http.ResponseWriter, r *http.Request) error {
	f := newForm()
	f.Extra["Return"] = returnParam(r)
	return s.showForm(w, r, "signin", "signin.title", f, http.StatusOK)
}

func (s *Server) submitSignIn(w http.ResponseWriter, r *http.Request) error {
	if s.limited(w, r) || s.hasherBusy(w, r) {
		return nil
	}
	f := newForm()
	f.Extra["Return"] = returnParam(r)
	f.Values["email"] = strings.TrimSpace(r.PostFormValue("email"))
	acct, err := s.opts.Auth.Password(r.Context(), f.Values["email"], r.PostFormValue("password"), clientAddr(r))
	var te *identity.ThrottledError
	switch {
	case errors.Is(err, identity.ErrBusy):
		w.Header().Set("Retry-After", "2")
		return apperr.New(apperr.RateLimited, "busy")
	case errors.As(err, &te):
		return s.throttled(w, r, f, "signin", "signin.title", te.Wait)
	case errors.Is(err, identity.ErrSignIn):
		f.Errors[""] = "signin.wrong"
		return s.showForm(w, r, "signin", "signin.title", f, http.StatusUnauthorized)
	case err != nil:
		return err
	}
	if err := s.startSession(w, r, acct, session.LevelPassword); err != nil {
		return err
	}
	if acct.EmailVerified.IsZero() {
		// Activated, address never proven: a fresh code, then that step.
		if err := s.opts.Auth.StartEmailVerification(r.Context(), acct); err != nil {
			return err
		}
		return redirect(w, r, "/activate/email")
	}
	has, err := s.opts.Auth.Store.HasSecondFactor(r.Context(), acct.ID)
	if err != nil {
		return err
	}
	if !has {
		return redirect(w, r, "/mfa/setup") // no second factor yet: enrol one before anything else
	}
	if back := returnParam(r); back != "" {
		return redirect(w, r, "/signin/verify?"+url.Values{"return": {back}}.Encode())
	}
	return redirect(w, r, "/signin/verify")
}

// noticeNewDevice tells the owner about a sign-in from a browser none of
// their other live sessions use.
func (s *Server) noticeNewDevice(r *http.Request, u *signedIn) {
	list, err := s.opts.Sessions.List(r.Context(), u.account.ID)
	if err != nil {
		return
	}
	for _, ss := range list {
		if string(ss.IDHash) != string(u.session.IDHash) && ss.UserAgent == u.session.UserAgent {
			return
		}
	}
	if len(list) > 1 {
		s.opts.Auth.Notice(r.Context(), u.account, "new-sign-in")
	}
}
