package web

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/identity"
	"carefront/internal/session"
)

// Sign-in, activation and authenticator setup. Handlers stay thin: the
// rules live in identity (who you are) and session (staying signed in).

type signedInKey struct{}

// signedIn is the person behind a request's session cookie.
type signedIn struct {
	token   string
	session *session.Session
	account *identity.Account
}

func currentUser(ctx context.Context) *signedIn {
	u, _ := ctx.Value(signedInKey{}).(*signedIn)
	return u
}

// withSession looks up the session cookie; a dead or forged one is
// cleared and the request goes on signed out.
func (s *Server) withSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := s.opts.Sessions
		if m == nil || strings.HasPrefix(r.URL.Path, "/static/") || r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		tok := m.Token(r)
		if tok == "" {
			next.ServeHTTP(w, r)
			return
		}
		sess, err := m.Lookup(r.Context(), tok)
		if err == nil {
			var acct *identity.Account
			if acct, err = s.opts.Auth.Store.AccountByID(r.Context(), sess.AccountID); err == nil {
				u := &signedIn{token: tok, session: sess, account: acct}
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), signedInKey{}, u)))
				return
			}
		}
		if !errors.Is(err, session.ErrNoSession) && !errors.Is(err, identity.ErrNoAccount) {
			s.renderError(w, r, err)
			return
		}
		http.SetCookie(w, m.ClearCookie())
		next.ServeHTTP(w, r)
	})
}

// limited applies the per-address limit to sign-in forms; it answers 429
// with Retry-After and reports false when over it.
func (s *Server) limited(w http.ResponseWriter, r *http.Request) bool {
	return s.limitedBy(s.opts.Limiter, w, r)
}

func (s *Server) limitedBy(l Limiter, w http.ResponseWriter, r *http.Request) bool {
	if l == nil {
		return false
	}
	ok, wait := l.Allow(r.Context(), clientAddr(r))
	if ok {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
	s.renderError(w, r, apperr.New(apperr.RateLimited, "too many attempts from this address"))
	return true
}

// hasherBusy answers 429 at once when every password-hashing slot is
// taken: past capacity, a sign-in is refused fast instead of queued.
func (s *Server) hasherBusy(w http.ResponseWriter, r *http.Request) bool {
	if !s.opts.Auth.Hasher.Busy() {
		return false
	}
	w.Header().Set("Retry-After", "2")
	s.renderError(w, r, apperr.New(apperr.RateLimited, "too many sign-ins at once"))
	return true
}

// checkNewPassword puts the policy's complaint about a new password, or
// the confirmation's, beside its field.
func checkNewPassword(f *form, pw, again string, personal ...string) {
	var pe *identity.PolicyError
	if err := identity.CheckPassword(pw, personal...); errors.As(err, &pe) {
		f.Errors["password"] = "password." + strings.TrimPrefix(pe.Code, "password-")
	} else if pw != again {
		f.Errors["password2"] = "activate.password2.mismatch"
	}
}

// throttled shows a form again with how long to wait, and Retry-After.
func (s *Server) throttled(w http.ResponseWriter, r *http.Request, f *form, name, title string, wait time.Duration) error {
	secs := int(wait.Seconds()) + 1
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	f.Errors[""] = "signin.throttled"
	f.Extra["Wait"] = secs
	return s.showForm(w, r, name, title, f, http.StatusTooManyRequests)
}

// form is what an identity page shows: the values typed (never passwords
// or codes) and the errors, by field.
type form struct {
	Values map[string]string
	Errors map[string]string // field -> catalogue id; "" for the form as a whole
	Extra  map[string]any
}

func newForm() *form {
	return &form{Values: map[string]string{}, Errors: map[string]string{}, Extra: map[string]any{}}
}

// Error returns the catalogue id of a field's error.
func (f *form) Error(field string) string { return f.Errors[field] }

func (s *Server) showForm(w http.ResponseWriter, r *http.Request, name, title string, f *form, status int) error {
	p := s.newPage(w, r, title)
	p.Status = status
	p.Data = f
	return s.render(w, r, name, p)
}

func redirect(w http.ResponseWriter, r *http.Request, to string) error {
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

// --- activation ---

func (s *Server) showActivate(w http.ResponseWriter, r *http.Request) error {
	f := newForm()
	f.Values["code"] = r.URL.Query().Get("code")
	return s.showForm(w, r, "activate", "activate.title", f, http.StatusOK)
}

func (s *Server) submitActivate(w http.ResponseWriter, r *http.Request) error {
	if s.limited(w, r) || s.hasherBusy(w, r) {
		return nil
	}
	f := newForm()
	for _, k := range []string{"code", "family", "month", "day", "year", "email"} {
		f.Values[k] = strings.TrimSpace(r.PostFormValue(k))
	}
	pw, pw2 := r.PostFormValue("password"), r.PostFormValue("password2")
	required := map[string]string{"code": "activate.code.missing", "family": "activate.family.missing", "email": "activate.email.missing"}
	for k, id := range required {
		if f.Values[k] == "" {
			f.Errors[k] = id
		}
	}
	dob, ok := birthDate(f.Values["year"], f.Values["month"], f.Values["day"])
	if !ok {
		f.Errors["dob"] = "activate.dob.invalid"
	}
	if _, err := identity.NormalizeEmail(f.Values["email"]); err != nil && f.Values["email"] != "" {
		f.Errors["email"] = "activate.email.invalid"
	}
	checkNewPassword(f, pw, pw2, f.Values["email"], f.Values["family"])
	if len(f.Errors) > 0 {
		return s.showForm(w, r, "activate", "activate.title", f, http.StatusUnprocessableEntity)
	}
	ctx := r.Context()
	auth := s.opts.Auth
	patientID, err := auth.Store.CheckActivation(ctx, f.Values["code"], identity.Demographics{BirthDate: dob, FamilyName: f.Values["family"]}, s.opts.Lookup)
	if errors.Is(err, identity.ErrActivation) {
		if err := auth.ActivationEvent(ctx, nil, "", "activation-refused", clientAddr(r)); err != nil {
			return err
		}
		f.Errors[""] = "activate.nomatch"
		return s.showForm(w, r, "activate", "activate.title", f, http.StatusUnprocessableEntity)
	}
	if errors.Is(err, identity.ErrPatientHasAccount) {
		if err := auth.ActivationEvent(ctx, nil, patientID, "activation-record-has-account", clientAddr(r)); err != nil {
			return err
		}
		f.Errors[""] = "activate.has.account"
		return s.showForm(w, r, "activate", "activate.title", f, http.StatusConflict)
	}
	if err != nil {
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
	acct := &identity.Account{Email: f.Values["email"], PasswordHash: hash}
	switch err := auth.Store.Activate(ctx, f.Values["code"], patientID, acct); {
	case errors.Is(err, identity.ErrPatientHasAccount):
		if err := auth.ActivationEvent(ctx, nil, patientID, "activation-record-has-account", clientAddr(r)); err != nil {
			return err
		}
		f.Errors[""] = "activate.has.account"
		return s.showForm(w, r, "activate", "activate.title", f, http.StatusConflict)
	case apperr.CodeOf(err) == apperr.Conflict:
		f.Errors["email"] = "activate.email.taken"
		return s.showForm(w, r, "activate", "activate.title", f, http.StatusConflict)
	case errors.Is(err, identity.ErrActivation):
		f.Errors[""] = "activate.nomatch"
		return s.showForm(w, r, "activate", "activate.title", f, http.StatusUnprocessableEntity)
	case err != nil:
		return err
	}
	if err := auth.ActivationEvent(ctx, acct, patientID, "account-activated", clientAddr(r)); err != nil {
		return err
	}
	if err := s.startSession(w, r, acct, session.LevelPassword); err != nil {
		return err
	}
	// The address given must be proven before anything else.
	if err := auth.StartEmailVerification(ctx, acct); err != nil {
		return err
	}
	return redirect(w, r, "/activate/email")
}

// birthDate reads the memorable-date fields into YYYY-MM-DD.
func birthDate(y, m, d string) (string, bool) {
	yy, e1 := strconv.Atoi(y)
	mm, e2 := strconv.Atoi(m)
	dd, e3 := strconv.Atoi(d)
	if e1 != nil || e2 != nil || e3 != nil || yy < 1900 || yy > 2100 {
		return "", false
	}
	t := time.Date(yy, time.Month(mm), dd, 0, 0, 0, 0, time.UTC)
	if t.Month() != time.Month(mm) || t.Day() != dd {
		return "", false
	}
	return t.Format("2006-01-02"), true
}

func (s *Server) idleFor(a *identity.Account) time.Duration {
	if a.Kind == identity.Staff {
		return 10 * time.Minute
	}
	if s.opts.IdleTimeout > 0 {
		return s.opts.IdleTimeout
	}
	return 15 * time.Minute
}

func (s *Server) startSession(w http.ResponseWriter, r *http.Request, a *identity.Account, level string) error {
	// A session from before sign-in is not carried over: a new id always.
	if u := currentUser(r.Context()); u != nil {
		s.opts.Sessions.End(r.Context(), u.token)
	}
	tok, sess, err := s.opts.Sessions.Create(r.Context(), a.ID, level, s.idleFor(a), r.UserAgent(), clientAddr(r))
	if err != nil {
		return err
	}
	if err := s.opts.Auth.SessionEvent(r.Context(), a, false, "session-started-"+level, clientAddr(r), hex.EncodeToString(sess.IDHash)); err != nil {
		s.opts.Sessions.End(r.Context(), tok)
		return err
	}
	http.SetCookie(w, s.opts.Sessions.Cookie(tok))
	if level == session.LevelMFA {
		s.noticeNewDevice(r, &signedIn{token: tok, session: sess, account: a})
	}
	return nil
}

// --- authenticator app setup ---

func (s *Server) requireUser(w http.ResponseWriter, r *http.Request) *signedIn {
	u := currentUser(r.Context())
	if u == nil {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return nil
	}
	if s.emailUnproven(w, r, u) {
		return nil
	}
	return u
}

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

// --- sign-in ---

func (s *Server) showSignIn(w http.ResponseWriter, r *http.Request) error {
	return s.showForm(w, r, "signin", "signin.title", newForm(), http.StatusOK)
}

func (s *Server) submitSignIn(w http.ResponseWriter, r *http.Request) error {
	if s.limited(w, r) || s.hasherBusy(w, r) {
		return nil
	}
	f := newForm()
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
	return redirect(w, r, "/signin/verify")
}

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

func (s *Server) submitSignOut(w http.ResponseWriter, r *http.Request) error {
	if u := currentUser(r.Context()); u != nil {
		if err := s.opts.Sessions.End(r.Context(), u.token); err != nil {
			return err
		}
		if err := s.opts.Auth.SessionEvent(r.Context(), u.account, true, "signed-out", clientAddr(r), hex.EncodeToString(u.session.IDHash)); err != nil {
			return err
		}
	}
	http.SetCookie(w, s.opts.Sessions.ClearCookie())
	return redirect(w, r, "/")
}

func hashOf(tok string) []byte { return session.HashToken(tok) }

// renew gives the session a new id after a second-factor check by method
// and audits the change, naming the new id's hash so both ids of one
// sign-in link up. An emailed code makes the session two-factor but never
// recent (no step-up).
func (s *Server) renew(r *http.Request, u *signedIn, method string) (string, error) {
	check := session.StrongCheck
	if method == "email-code" {
		check = session.WeakCheck
	}
	tok, err := s.opts.Sessions.Renew(r.Context(), u.token, check)
	if err != nil {
		return "", err
	}
	err = s.opts.Auth.SessionEvent(r.Context(), u.account, false, "session-renewed-mfa", clientAddr(r), hex.EncodeToString(session.HashToken(tok)))
	return tok, err
}

// returnParam is the local page a verify form goes back to, or "".
func returnParam(r *http.Request) string {
	if p := localPath(r.URL.Query().Get("return")); p != "/" {
		return p
	}
	return ""
}

// keepAlive answers the idle warning's "Stay signed in": the session
// lookup that ran for this request recorded the activity.
func (s *Server) keepAlive(w http.ResponseWriter, r *http.Request) {
	u := currentUser(r.Context())
	if u == nil {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if err := s.opts.Sessions.Touch(r.Context(), u.token); err != nil {
		s.renderError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// --- staff setup ---

func (s *Server) showStaffSetup(w http.ResponseWriter, r *http.Request) error {
	f := newForm()
	f.Values["code"] = r.URL.Query().Get("code")
	a, err := s.opts.Auth.Store.StaffSetupAccount(r.Context(), f.Values["code"])
	if err != nil {
		f.Errors[""] = "staff.setup.invalid"
		return s.showForm(w, r, "staff_setup", "staff.setup.title", f, http.StatusNotFound)
	}
	f.Values["email"] = a.Email
	return s.showForm(w, r, "staff_setup", "staff.setup.title", f, http.StatusOK)
}

func (s *Server) submitStaffSetup(w http.ResponseWriter, r *http.Request) error {
	if s.limited(w, r) || s.hasherBusy(w, r) {
		return nil
	}
	ctx := r.Context()
	f := newForm()
	f.Values["code"] = r.PostFormValue("code")
	st := s.opts.Auth.Store
	a, err := st.StaffSetupAccount(ctx, f.Values["code"])
	if err != nil {
		f.Errors[""] = "staff.setup.invalid"
		return s.showForm(w, r, "staff_setup", "staff.setup.title", f, http.StatusNotFound)
	}
	f.Values["email"] = a.Email
	pw := r.PostFormValue("password")
	checkNewPassword(f, pw, r.PostFormValue("password2"), a.Email)
	if len(f.Errors) > 0 {
		return s.showForm(w, r, "staff_setup", "staff.setup.title", f, http.StatusUnprocessableEntity)
	}
	hash, err := s.opts.Auth.Hasher.Hash(ctx, pw)
	if err != nil {
		return err
	}
	if err := st.CompleteStaffSetup(ctx, f.Values["code"], a.ID, hash); err != nil {
		f.Errors[""] = "staff.setup.invalid"
		return s.showForm(w, r, "staff_setup", "staff.setup.title", f, http.StatusNotFound)
	}
	if err := s.startSession(w, r, a, session.LevelPassword); err != nil {
		return err
	}
	return redirect(w, r, "/mfa/setup")
}

// principal is who the signed-in person is to the access decision.
func principal(u *signedIn, r *http.Request) access.Principal {
	p := access.Principal{User: "Person/" + u.account.ID, Address: clientAddr(r), Role: u.account.StaffRole}
	if u.session.Level == session.LevelMFA && !u.account.EmailVerified.IsZero() {
		p.Patient = u.account.PatientID // no clinical data on one factor, nor before the address is proven
	}
	return p
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

// showOutbox lists the emails carefront would have sent (demo mode only).
func (s *Server) showOutbox(w http.ResponseWriter, r *http.Request) error {
	f := newForm()
	f.Extra["Messages"] = s.opts.Outbox.Messages()
	return s.showForm(w, r, "outbox", "outbox.title", f, http.StatusOK)
}

// --- forgot password ---

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
