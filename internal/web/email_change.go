package web

import (
	"encoding/hex"
	"errors"
	"net/http"
	"strings"

	"carefront/internal/apperr"
	"carefront/internal/identity"
)

// Changing the email address: starting is a step-up action; the new
// address proves itself with a code; then the other sessions end.

func (s *Server) emailForm(w http.ResponseWriter, r *http.Request, u *signedIn, f *form, status int) error {
	pending, err := s.opts.Auth.Store.PendingEmail(r.Context(), u.account.ID)
	if err != nil {
		return err
	}
	if pending != "" {
		f.Extra["Pending"] = pending
	}
	f.Extra["Current"] = u.account.Email
	return s.showForm(w, r, "email_change", "email.change.title", f, status)
}

func (s *Server) showChangeEmail(w http.ResponseWriter, r *http.Request) error {
	u := s.requireMFA(w, r)
	if u == nil {
		return nil
	}
	return s.emailForm(w, r, u, newForm(), http.StatusOK)
}

func (s *Server) submitChangeEmail(w http.ResponseWriter, r *http.Request) error {
	u := s.requireRecentAuth(w, r, s.stepUpAge())
	if u == nil || s.limited(w, r) {
		return nil
	}
	f := newForm()
	f.Values["email"] = strings.TrimSpace(r.PostFormValue("email"))
	err := s.opts.Auth.StartEmailChange(r.Context(), u.account, f.Values["email"], clientAddr(r), hex.EncodeToString(u.session.IDHash))
	switch {
	case apperr.CodeOf(err) == apperr.Invalid:
		f.Errors["email"] = "activate.email.invalid"
		return s.emailForm(w, r, u, f, http.StatusUnprocessableEntity)
	case err != nil:
		return err
	}
	return s.emailForm(w, r, u, newForm(), http.StatusOK)
}

func (s *Server) submitConfirmEmail(w http.ResponseWriter, r *http.Request) error {
	u := s.requireMFA(w, r)
	if u == nil || s.limited(w, r) {
		return nil
	}
	ctx := r.Context()
	email, err := s.opts.Auth.ConfirmEmailChange(ctx, u.account, r.PostFormValue("code"), clientAddr(r), hex.EncodeToString(u.session.IDHash))
	if errors.Is(err, identity.ErrEmailChange) || errors.Is(err, identity.ErrEmailTaken) {
		f := newForm()
		f.Errors["code"] = "email.change.wrong"
		return s.emailForm(w, r, u, f, http.StatusUnprocessableEntity)
	}
	if err != nil {
		return err
	}
	if err := s.opts.Sessions.EndOthers(ctx, u.account.ID, u.session.IDHash); err != nil {
		return err
	}
	f := newForm()
	f.Extra["Done"] = email
	return s.showForm(w, r, "email_change", "email.change.title", f, http.StatusOK)
}
