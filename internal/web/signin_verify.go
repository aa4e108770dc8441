package web

import (
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"

	"carefront/internal/identity"
	"carefront/internal/session"
)

// The second step of sign-in, and step-up: an authenticator code, a
// recovery code, a passkey, or a code sent by email (never a step-up).

func (s *Server) showVerify(w http.ResponseWriter, r *http.Request) error {
	u := s.requireUser(w, r)
	if u == nil {
		return nil
	}
	return s.verifyForm(w, r, u, newForm(), http.StatusOK)
}

// verifyForm shows the second-step page with the ways this account has.
func (s *Server) verifyForm(w http.ResponseWriter, r *http.Request, u *signedIn, f *form, status int) error {
	fs, err := s.opts.Auth.Store.Factors(r.Context(), u.account.ID)
	if err != nil {
		return err
	}
	f.Extra["HasPasskey"] = len(fs.Passkeys) > 0 && s.opts.Auth.WebAuthn != nil
	f.Extra["HasTOTP"] = fs.AuthenticatorApp
	// An emailed code signs in (the page says it is the weaker way) but
	// never steps up.
	f.Extra["EmailOK"] = u.session.Level != session.LevelMFA
	if _, ok := f.Extra["StepUp"]; !ok {
		f.Extra["Return"] = returnParam(r)
	}
	return s.showForm(w, r, "verify", "verify.title", f, status)
}

func (s *Server) submitVerify(w http.ResponseWriter, r *http.Request) error {
	u := s.requireUser(w, r)
	if u == nil {
		return nil
	}
	if s.limited(w, r) {
		return nil
	}
	f := newForm()
	check := s.opts.Auth.SecondFactor
	if u.session.Level == session.LevelMFA {
		check = s.opts.Auth.StepUp // signed in already: this is a step-up
	}
	method, err := check(r.Context(), u.account, r.PostFormValue("code"), clientAddr(r), hex.EncodeToString(u.session.IDHash))
	var te *identity.ThrottledError
	switch {
	case errors.As(err, &te):
		secs := int(te.Wait.Seconds()) + 1
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		f.Errors[""] = "signin.throttled"
		f.Extra["Wait"] = secs
		return s.verifyForm(w, r, u, f, http.StatusTooManyRequests)
	case errors.Is(err, identity.ErrBadCode):
		f.Errors["code"] = "verify.wrong"
		return s.verifyForm(w, r, u, f, http.StatusUnauthorized)
	case err != nil:
		return err
	}
	tok, err := s.renew(r, u, method)
	if err != nil {
		return err
	}
	http.SetCookie(w, s.opts.Sessions.Cookie(tok))
	s.noticeNewDevice(r, u)
	return redirect(w, r, localPath(r.URL.Query().Get("return")))
}

// returnParam is the local page a verify form goes back to, or "".
func returnParam(r *http.Request) string {
	if p := localPath(r.URL.Query().Get("return")); p != "/" {
		return p
	}
	return ""
}

// submitEmailCode emails a one-time code for the second step.
func (s *Server) submitEmailCode(w http.ResponseWriter, r *http.Request) error {
	u := s.requireUser(w, r)
	if u == nil || s.limited(w, r) {
		return nil
	}
	f := newForm()
	err := s.opts.Auth.SendEmailCode(r.Context(), u.account, clientAddr(r), hex.EncodeToString(u.session.IDHash))
	switch {
	case errors.Is(err, identity.ErrTooManyEmailCodes):
		f.Errors[""] = "verify.email.toomany"
		return s.verifyForm(w, r, u, f, http.StatusTooManyRequests)
	case err != nil:
		return err
	}
	f.Extra["Sent"] = true
	return s.verifyForm(w, r, u, f, http.StatusOK)
}
