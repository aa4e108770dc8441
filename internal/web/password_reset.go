package web

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"carefront/internal/identity"
)

// Forgot password: a link by email, opened in the same browser, and a
// second factor before the new password.

const resetCookie = "__Host-carefront-reset"

func (s *Server) resetCookieName() string {
	if s.opts.Sessions != nil && s.opts.Sessions.Insecure {
		return "carefront-reset"
	}
	return resetCookie
}

func (s *Server) showForgot(w http.ResponseWriter, r *http.Request) error {
	return s.showForm(w, r, "forgot", "forgot.title", newForm(), http.StatusOK)
}

// submitForgot answers the same whether or not the address has an
// account, and binds any link to this browser with a cookie.
func (s *Server) submitForgot(w http.ResponseWriter, r *http.Request) error {
	if s.limited(w, r) {
		return nil
	}
	f := newForm()
	email := strings.TrimSpace(r.PostFormValue("email"))
	if _, err := identity.NormalizeEmail(email); err != nil {
		f.Errors["email"] = "activate.email.invalid"
		return s.showForm(w, r, "forgot", "forgot.title", f, http.StatusUnprocessableEntity)
	}
	nonce, err := s.opts.Auth.StartReset(r.Context(), email, s.opts.BaseURL+"/reset", clientAddr(r))
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: s.resetCookieName(), Value: nonce, Path: "/", MaxAge: int(identity.ResetValid / time.Second),
		HttpOnly: true, Secure: s.resetCookieName() == resetCookie, SameSite: http.SameSiteLaxMode})
	f.Extra["Sent"] = true
	return s.showForm(w, r, "forgot", "forgot.title", f, http.StatusOK)
}

func (s *Server) resetNonce(r *http.Request) string {
	c, err := r.Cookie(s.resetCookieName())
	if err != nil {
		return ""
	}
	return c.Value
}

func (s *Server) showReset(w http.ResponseWriter, r *http.Request) error {
	f := newForm()
	f.Values["token"] = r.URL.Query().Get("token")
	acct, err := s.opts.Auth.ResetAccount(r.Context(), f.Values["token"], s.resetNonce(r))
	if errors.Is(err, identity.ErrReset) {
		f.Extra["Broken"] = true
		return s.showForm(w, r, "reset", "reset.title", f, http.StatusNotFound)
	}
	if err != nil {
		return err
	}
	fs, err := s.opts.Auth.Store.Factors(r.Context(), acct.ID)
	if err != nil {
		return err
	}
	if !fs.AuthenticatorApp && fs.RecoveryCodes == 0 {
		// Resetting needs an app code or a recovery code. Someone with
		// only passkeys signs in with one instead (no password needed);
		// someone with nothing left is told how the clinic helps.
		passkeyOnly := len(fs.Passkeys) > 0 && s.opts.Auth.WebAuthn != nil
		f.Extra["PasskeyOnly"], f.Extra["NoFactor"] = passkeyOnly, !passkeyOnly
	}
	return s.showForm(w, r, "reset", "reset.title", f, http.StatusOK)
}

func (s *Server) submitReset(w http.ResponseWriter, r *http.Request) error {
	if s.limited(w, r) || s.hasherBusy(w, r) {
		return nil
	}
	ctx := r.Context()
	f := newForm()
	f.Values["token"] = r.PostFormValue("token")
	acct, err := s.opts.Auth.ResetAccount(ctx, f.Values["token"], s.resetNonce(r))
	if errors.Is(err, identity.ErrReset) {
		f.Extra["Broken"] = true
		return s.showForm(w, r, "reset", "reset.title", f, http.StatusNotFound)
	}
	if err != nil {
		return err
	}
	pw := r.PostFormValue("password")
	checkNewPassword(f, pw, r.PostFormValue("password2"), acct.Email)
	if len(f.Errors) > 0 {
		return s.showForm(w, r, "reset", "reset.title", f, http.StatusUnprocessableEntity)
	}
	hash := func() (string, error) { return s.opts.Auth.Hasher.Hash(ctx, pw) }
	_, err = s.opts.Auth.FinishReset(ctx, f.Values["token"], s.resetNonce(r), r.PostFormValue("code"), hash, clientAddr(r))
	var te *identity.ThrottledError
	switch {
	case errors.Is(err, identity.ErrBadCode):
		f.Errors["code"] = "verify.wrong"
		return s.showForm(w, r, "reset", "reset.title", f, http.StatusUnauthorized)
	case errors.As(err, &te):
		return s.throttled(w, r, f, "reset", "reset.title", te.Wait)
	case errors.Is(err, identity.ErrReset):
		f.Extra["Broken"] = true
		return s.showForm(w, r, "reset", "reset.title", f, http.StatusNotFound)
	case err != nil:
		return err
	}
	if err := s.opts.Sessions.EndOthers(ctx, acct.ID, nil); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: s.resetCookieName(), Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.resetCookieName() == resetCookie})
	f.Extra["Done"] = true
	return s.showForm(w, r, "reset", "reset.title", f, http.StatusOK)
}
