package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"carefront/internal/apperr"
	"carefront/internal/consent"
	"carefront/internal/identity"
	"carefront/internal/session"
)

// A caregiver accepts an invitation through the link mailed to them: with
// the account they have (signed in with both factors), or by creating one
// for the invited address, which the link has just proven. The rules live
// in consent.Grants (Invitation, Accept).

type acceptPage struct {
	*form
	Grant *consent.Grant
	Card  grantCard
	Code  string
	// SignedIn says the person is signed in with both factors: they accept
	// with this account.
	SignedIn bool
}

// showAccept shows what the invitation shares and the way to accept it.
func (s *Server) showAccept(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Grants == nil {
		return apperr.New(apperr.NotFound, "sharing is not available")
	}
	code := r.URL.Query().Get("code")
	g, err := s.opts.Grants.Invitation(r.Context(), code)
	if err != nil {
		return err
	}
	u := currentUser(r.Context())
	if u != nil && u.session.Level != session.LevelMFA {
		return redirect(w, r, "/signin/verify?"+url.Values{"return": {r.URL.RequestURI()}}.Encode())
	}
	return s.showAcceptForm(w, r, newForm(), g, code, http.StatusOK)
}

func (s *Server) showAcceptForm(w http.ResponseWriter, r *http.Request, f *form, g *consent.Grant, code string, status int) error {
	u := currentUser(r.Context())
	p := s.newPage(w, r, "accept.title")
	p.Status = status
	p.Data = acceptPage{form: f, Grant: g, Card: card(*g, s.now()), Code: code,
		SignedIn: u != nil && u.session.Level == session.LevelMFA && !u.account.EmailVerified.IsZero()}
	return s.render(w, r, "caregiver_accept", p)
}

// submitAccept accepts the invitation with the signed-in account, or
// creates an account for the invited address and accepts with it; the
// new account then sets up its second factor before it sees anything.
func (s *Server) submitAccept(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Grants == nil {
		return apperr.New(apperr.NotFound, "sharing is not available")
	}
	ctx := r.Context()
	code := r.PostFormValue("code")
	g, err := s.opts.Grants.Invitation(ctx, code)
	if err != nil {
		return err
	}
	if u := currentUser(ctx); u != nil {
		if u = s.requireMFA(w, r); u == nil {
			return nil
		}
		if _, err := s.opts.Grants.Accept(ctx, code, u.account.ID, u.account.Email, clientAddr(r)); err != nil {
			return err
		}
		s.noticeAccepted(r, g.Patient)
		return redirect(w, r, "/?for="+url.QueryEscape(g.Patient))
	}
	// No account signed in: create one for the invited address.
	if s.limited(w, r) || s.hasherBusy(w, r) {
		return nil
	}
	f := newForm()
	pw, pw2 := r.PostFormValue("password"), r.PostFormValue("password2")
	checkNewPassword(f, pw, pw2, g.Email)
	if len(f.Errors) > 0 {
		return s.showAcceptForm(w, r, f, g, code, http.StatusUnprocessableEntity)
	}
	auth := s.opts.Auth
	if _, err := auth.Store.AccountByEmail(ctx, g.Email); err == nil {
		f.Errors[""] = "accept.has.account"
		return s.showAcceptForm(w, r, f, g, code, http.StatusConflict)
	} else if !errors.Is(err, identity.ErrNoAccount) {
		return err
	}
	hash, err := auth.Hasher.Hash(ctx, pw)
	if errors.Is(err, identity.ErrBusy) {
		w.Header().Set("Retry-After", "2")
		return apperr.New(apperr.RateLimited, "busy")
	}
	if err != nil {
		return err
	}
	// The link was mailed to this address: opening it proves it.
	acct := &identity.Account{Kind: identity.Person, Email: g.Email, PasswordHash: hash}
	if err := auth.Store.CreateAccount(ctx, acct); err != nil {
		if apperr.CodeOf(err) == apperr.Conflict || strings.Contains(err.Error(), "UNIQUE") || strings.Contains(err.Error(), "unique") {
			f.Errors[""] = "accept.has.account"
			return s.showAcceptForm(w, r, f, g, code, http.StatusConflict)
		}
		return err
	}
	if err := auth.ActivationEvent(ctx, acct, "", "caregiver-account-created", clientAddr(r)); err != nil {
		return err
	}
	if _, err := s.opts.Grants.Accept(ctx, code, acct.ID, acct.Email, clientAddr(r)); err != nil {
		return err
	}
	s.noticeAccepted(r, g.Patient)
	if err := s.startSession(w, r, acct, session.LevelPassword); err != nil {
		return err
	}
	return redirect(w, r, "/mfa/setup")
}

// noticeAccepted tells the patient that a caregiver accepted (no PHI).
func (s *Server) noticeAccepted(r *http.Request, patient string) {
	if a, err := s.opts.Auth.Store.AccountForPatient(r.Context(), patient); err == nil {
		s.opts.Auth.Notice(r.Context(), a, "sharing-accepted")
	}
}
