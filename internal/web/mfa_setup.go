package web

import (
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"carefront/internal/apperr"
)

// Authenticator app setup: at once while an account has no second
// factor, behind step-up after.

const issuer = "carefront"

// factorChanger lets a person add or replace a second factor: at once
// while they have none (enrolment), otherwise behind step-up. It returns
// nil when it answered.
func (s *Server) factorChanger(w http.ResponseWriter, r *http.Request) (u *signedIn, first bool) {
	if u = s.requireUser(w, r); u == nil {
		return nil, false
	}
	has, err := s.opts.Auth.Store.HasSecondFactor(r.Context(), u.account.ID)
	if err != nil {
		s.renderError(w, r, err)
		return nil, false
	}
	if !has {
		return u, true
	}
	return s.requireRecentAuth(w, r, s.stepUpAge()), false
}

func (s *Server) showMFASetup(w http.ResponseWriter, r *http.Request) error {
	u, _ := s.factorChanger(w, r)
	if u == nil {
		return nil
	}
	return s.mfaSetupForm(w, r, u, newForm(), http.StatusOK)
}

func (s *Server) mfaSetupForm(w http.ResponseWriter, r *http.Request, u *signedIn, f *form, status int) error {
	ctx := r.Context()
	st := s.opts.Auth.Store
	en, err := st.PendingTOTP(ctx, u.account.ID, issuer, u.account.Email, 10*time.Minute)
	if err == nil && en == nil {
		en, err = st.BeginTOTP(ctx, u.account.ID, issuer, u.account.Email)
	}
	if err != nil {
		return err
	}
	png, err := en.QRCode(240)
	if err != nil {
		return err
	}
	f.Extra["QR"] = "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)
	var groups []string
	for i := 0; i < len(en.Secret); i += 4 {
		groups = append(groups, en.Secret[i:min(i+4, len(en.Secret))])
	}
	f.Extra["Secret"] = strings.Join(groups, " ")
	f.Extra["DeviceName"] = device(r.UserAgent())
	return s.showForm(w, r, "mfa_setup", "mfa.setup.title", f, status)
}

func (s *Server) submitMFASetup(w http.ResponseWriter, r *http.Request) error {
	u, first := s.factorChanger(w, r)
	if u == nil {
		return nil
	}
	ctx := r.Context()
	err := s.opts.Auth.AddAuthenticatorApp(ctx, u.account, r.PostFormValue("code"), clientAddr(r), hex.EncodeToString(u.session.IDHash))
	if apperr.CodeOf(err) == apperr.Invalid {
		f := newForm()
		f.Errors["code"] = "mfa.code.wrong"
		return s.mfaSetupForm(w, r, u, f, http.StatusUnprocessableEntity)
	}
	if err != nil {
		return err
	}
	if err := s.factorAdded(w, r, u); err != nil {
		return err
	}
	if !first {
		return redirect(w, r, "/account/security")
	}
	codes, err := s.opts.Auth.Store.NewRecoveryCodes(ctx, u.account.ID)
	if err != nil {
		return err
	}
	f := newForm()
	f.Extra["Codes"] = codes
	return s.showForm(w, r, "recovery_codes", "recovery.title", f, http.StatusOK)
}

// factorAdded follows a new second factor: the session gets a new id
// (and, after the first factor, becomes a two-factor session) and every
// other session ends.
func (s *Server) factorAdded(w http.ResponseWriter, r *http.Request, u *signedIn) error {
	tok, err := s.renew(r, u, "new-factor")
	if err != nil {
		return err
	}
	http.SetCookie(w, s.opts.Sessions.Cookie(tok))
	return s.opts.Sessions.EndOthers(r.Context(), u.account.ID, hashOf(tok))
}
