package web

import (
	"encoding/hex"
	"errors"
	"net/http"

	"carefront/internal/identity"
)

// The address a person gives at activation is proven before the account
// can be used: a code goes to it, and until it is typed here every page
// that needs a signed-in person sends them back to this one.

// emailUnproven reports whether u's account still has to prove its address,
// sending the person to do so when it has.
func (s *Server) emailUnproven(w http.ResponseWriter, r *http.Request, u *signedIn) bool {
	if !u.account.EmailVerified.IsZero() {
		return false
	}
	http.Redirect(w, r, "/activate/email", http.StatusSeeOther)
	return true
}

// unproven returns the signed-in person whose address is still to be
// proven, or nil after sending them on: to sign in, or to setup once it is.
func (s *Server) unproven(w http.ResponseWriter, r *http.Request) *signedIn {
	u := currentUser(r.Context())
	switch {
	case u == nil:
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return nil
	case !u.account.EmailVerified.IsZero():
		http.Redirect(w, r, "/mfa/setup", http.StatusSeeOther)
		return nil
	}
	return u
}

func (s *Server) showVerifyEmail(w http.ResponseWriter, r *http.Request) error {
	u := s.unproven(w, r)
	if u == nil {
		return nil
	}
	return s.verifyEmailForm(w, r, u, newForm(), http.StatusOK)
}

func (s *Server) verifyEmailForm(w http.ResponseWriter, r *http.Request, u *signedIn, f *form, status int) error {
	f.Extra["Email"] = u.account.Email
	return s.showForm(w, r, "activate_email", "verifyemail.title", f, status)
}

func (s *Server) submitVerifyEmail(w http.ResponseWriter, r *http.Request) error {
	u := s.unproven(w, r)
	if u == nil || s.limited(w, r) {
		return nil
	}
	err := s.opts.Auth.ConfirmEmailVerification(r.Context(), u.account, r.PostFormValue("code"), clientAddr(r), hex.EncodeToString(u.session.IDHash))
	if errors.Is(err, identity.ErrEmailVerify) {
		f := newForm()
		f.Errors["code"] = "verifyemail.wrong"
		return s.verifyEmailForm(w, r, u, f, http.StatusUnprocessableEntity)
	}
	if err != nil {
		return err
	}
	return redirect(w, r, "/mfa/setup")
}

func (s *Server) submitResendVerifyEmail(w http.ResponseWriter, r *http.Request) error {
	u := s.unproven(w, r)
	if u == nil || s.limited(w, r) {
		return nil
	}
	if err := s.opts.Auth.StartEmailVerification(r.Context(), u.account); err != nil {
		return err
	}
	f := newForm()
	f.Extra["Resent"] = true
	return s.verifyEmailForm(w, r, u, f, http.StatusOK)
}
