package web

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"carefront/internal/apperr"
	"carefront/internal/identity"
	"carefront/internal/session"
)

// Passkeys: the browser side (static/passkey.js) asks for ceremony options
// as JSON, runs navigator.credentials.create/get, and posts the answer
// back. Pages work without JavaScript; passkey buttons appear only where
// the browser supports WebAuthn.

// ceremonyReply is what an options endpoint answers.
type ceremonyReply struct {
	Ceremony string `json:"ceremony"`
	Options  any    `json:"options"`
}

// ceremonyAnswer is what the browser posts back.
type ceremonyAnswer struct {
	Ceremony   string          `json:"ceremony"`
	Credential json.RawMessage `json:"credential"`
	Name       string          `json:"name,omitempty"`
	Return     string          `json:"return,omitempty"`
}

// jsonReply is a passkey endpoint's outcome: where to go next, or a
// message for the person in their language.
type jsonReply struct {
	Next    string `json:"next,omitempty"`
	First   bool   `json:"first,omitempty"` // the account's first second factor: show recovery codes next
	Message string `json:"message,omitempty"`
	StepUp  string `json:"stepUp,omitempty"` // confirm it is you here first
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// jsonMessage answers with a catalogue message in the person's language.
func (s *Server) jsonMessage(w http.ResponseWriter, r *http.Request, status int, id string, args ...any) error {
	tr := s.translator(w, r)
	return writeJSON(w, status, jsonReply{Message: tr.T(id, args...)})
}

// passkeyError turns a ceremony's failure into a message; other errors
// go to the usual error answer.
func (s *Server) passkeyError(w http.ResponseWriter, r *http.Request, err error) error {
	var te *identity.ThrottledError
	switch {
	case errors.As(err, &te):
		secs := int(te.Wait.Seconds()) + 1
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		return s.jsonMessage(w, r, http.StatusTooManyRequests, "signin.throttled", "Wait", secs)
	case errors.Is(err, identity.ErrPasskey):
		return s.jsonMessage(w, r, http.StatusUnauthorized, "passkey.failed")
	case errors.Is(err, identity.ErrLastFactor):
		return s.jsonMessage(w, r, http.StatusConflict, "factor.last")
	case apperr.CodeOf(err) == apperr.Invalid:
		return s.jsonMessage(w, r, http.StatusUnprocessableEntity, "passkey.name.invalid")
	case apperr.CodeOf(err) == apperr.Conflict:
		return s.jsonMessage(w, r, http.StatusConflict, "passkey.conflict")
	}
	return err
}

func readAnswer(r *http.Request) (*ceremonyAnswer, error) {
	var a ceremonyAnswer
	if err := json.NewDecoder(r.Body).Decode(&a); err != nil || a.Ceremony == "" || len(a.Credential) == 0 {
		return nil, apperr.New(apperr.Invalid, "send the passkey answer as JSON")
	}
	return &a, nil
}

func (s *Server) passkeysOn(w http.ResponseWriter, r *http.Request) bool {
	if s.opts.Auth.WebAuthn == nil {
		s.renderError(w, r, apperr.New(apperr.NotFound, "passkeys are off"))
		return false
	}
	return true
}

// mayChangeFactors lets a signed-in person add a passkey: at once while
// they have no second factor yet (enrolment), otherwise only with a
// recent second-factor check. It answers and returns nil when not.
func (s *Server) mayChangeFactors(w http.ResponseWriter, r *http.Request) (*signedIn, bool, error) {
	u := currentUser(r.Context())
	if u == nil {
		return nil, false, s.jsonMessage(w, r, http.StatusUnauthorized, "passkey.signedout")
	}
	if u.account.EmailVerified.IsZero() {
		// The address comes first: no factor, so no two-factor session,
		// before it is proven.
		tr := s.translator(w, r)
		return nil, false, writeJSON(w, http.StatusForbidden, jsonReply{Message: tr.T("verifyemail.title"), StepUp: "/activate/email"})
	}
	has, err := s.opts.Auth.Store.HasSecondFactor(r.Context(), u.account.ID)
	if err != nil {
		return nil, false, err
	}
	if has && (u.session.Level != session.LevelMFA || !s.opts.Sessions.Recent(u.session, s.stepUpAge())) {
		tr := s.translator(w, r)
		return nil, false, writeJSON(w, http.StatusForbidden, jsonReply{Message: tr.T("stepup.lead"), StepUp: "/signin/verify?return=%2Faccount%2Fsecurity"})
	}
	return u, !has, nil
}

// --- adding a passkey ---

func (s *Server) passkeyRegisterOptions(w http.ResponseWriter, r *http.Request) error {
	if !s.passkeysOn(w, r) {
		return nil
	}
	u, _, err := s.mayChangeFactors(w, r)
	if u == nil {
		return err
	}
	opts, token, err := s.opts.Auth.BeginPasskeyRegistration(r.Context(), u.account)
	if err != nil {
		return s.passkeyError(w, r, err)
	}
	return writeJSON(w, http.StatusOK, ceremonyReply{Ceremony: token, Options: opts})
}

func (s *Server) passkeyRegister(w http.ResponseWriter, r *http.Request) error {
	if !s.passkeysOn(w, r) {
		return nil
	}
	u, first, err := s.mayChangeFactors(w, r)
	if u == nil {
		return err
	}
	a, err := readAnswer(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if _, err := s.opts.Auth.FinishPasskeyRegistration(ctx, u.account, a.Ceremony, a.Name, a.Credential, clientAddr(r), hex.EncodeToString(u.session.IDHash)); err != nil {
		return s.passkeyError(w, r, err)
	}
	if err := s.factorAdded(w, r, u); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, jsonReply{Next: "/account/security", First: first})
}

// submitRemovePasskey and submitRemoveAuthenticator remove a second
// factor: a sensitive change behind step-up, never the last factor, and
// every other session is signed out.
func (s *Server) submitRemovePasskey(w http.ResponseWriter, r *http.Request) error {
	return s.removeFactor(w, r, func(ctx context.Context, a *identity.Account, addr, sessionHex string) error {
		return s.opts.Auth.RemovePasskey(ctx, a, r.PostFormValue("id"), addr, sessionHex)
	})
}

func (s *Server) submitRemoveAuthenticator(w http.ResponseWriter, r *http.Request) error {
	return s.removeFactor(w, r, s.opts.Auth.RemoveAuthenticatorApp)
}

func (s *Server) removeFactor(w http.ResponseWriter, r *http.Request, remove func(ctx context.Context, a *identity.Account, addr, sessionHex string) error) error {
	u := s.requireRecentAuth(w, r, s.stepUpAge())
	if u == nil {
		return nil
	}
	ctx := r.Context()
	err := remove(ctx, u.account, clientAddr(r), hex.EncodeToString(u.session.IDHash))
	if errors.Is(err, identity.ErrLastFactor) {
		return s.accountSecurity(w, r, u, "factor.last", http.StatusConflict)
	}
	if err != nil {
		return err
	}
	if err := s.opts.Sessions.EndOthers(ctx, u.account.ID, u.session.IDHash); err != nil {
		return err
	}
	return redirect(w, r, "/account/security")
}

// --- signing in with a passkey ---

// passkeySignInOptions starts a passkey-only sign-in (also used by the
// email field's autofill).
func (s *Server) passkeySignInOptions(w http.ResponseWriter, r *http.Request) error {
	if !s.passkeysOn(w, r) || s.limitedBy(s.opts.CeremonyLimiter, w, r) {
		return nil
	}
	opts, token, err := s.opts.Auth.BeginPasskeySignIn(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ceremonyReply{Ceremony: token, Options: opts})
}

// passkeyVerifyOptions starts a passkey check as the second step of
// signing in, or to step up.
func (s *Server) passkeyVerifyOptions(w http.ResponseWriter, r *http.Request) error {
	if !s.passkeysOn(w, r) {
		return nil
	}
	u := currentUser(r.Context())
	if u == nil {
		return s.jsonMessage(w, r, http.StatusUnauthorized, "passkey.signedout")
	}
	opts, token, err := s.opts.Auth.BeginPasskeySecondFactor(r.Context(), u.account)
	if apperr.CodeOf(err) == apperr.NotFound {
		return s.jsonMessage(w, r, http.StatusNotFound, "passkey.none")
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ceremonyReply{Ceremony: token, Options: opts})
}

// passkeySignIn finishes either: a passkey alone starts a two-factor
// session; after a password (or to step up) it renews the session as a
// second factor would.
func (s *Server) passkeySignIn(w http.ResponseWriter, r *http.Request) error {
	if !s.passkeysOn(w, r) || s.limited(w, r) {
		return nil
	}
	a, err := readAnswer(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	u := currentUser(ctx)
	var current *identity.Account
	sessionHex := ""
	if u != nil {
		current, sessionHex = u.account, hex.EncodeToString(u.session.IDHash)
	}
	res, err := s.opts.Auth.FinishPasskey(ctx, a.Ceremony, a.Credential, current, clientAddr(r), sessionHex)
	if err != nil {
		return s.passkeyError(w, r, err)
	}
	if res.Alone {
		if err := s.startSession(w, r, res.Account, session.LevelMFA); err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, jsonReply{Next: localPath(a.Return)})
	}
	tok, err := s.renew(r, u, "passkey")
	if err != nil {
		return err
	}
	http.SetCookie(w, s.opts.Sessions.Cookie(tok))
	s.noticeNewDevice(r, u)
	return writeJSON(w, http.StatusOK, jsonReply{Next: localPath(a.Return)})
}
