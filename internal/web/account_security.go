package web

import (
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/identity"
	"carefront/internal/session"
)

// requireMFA lets through a person signed in with two factors; others are
// sent to finish signing in. It returns nil when it answered.
func (s *Server) requireMFA(w http.ResponseWriter, r *http.Request) *signedIn {
	u := currentUser(r.Context())
	switch {
	case u == nil:
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return nil
	case u.account.EmailVerified.IsZero():
		http.Redirect(w, r, "/activate/email", http.StatusSeeOther)
		return nil
	case u.session.Level != session.LevelMFA:
		http.Redirect(w, r, "/signin/verify", http.StatusSeeOther)
		return nil
	}
	return u
}

// StepUpAge is how recent the second factor must be for sensitive
// actions, unless Options.StepUpAge says otherwise.
const StepUpAge = 5 * time.Minute

func (s *Server) stepUpAge() time.Duration {
	if s.opts.StepUpAge > 0 {
		return s.opts.StepUpAge
	}
	return StepUpAge
}

// requireRecentAuth is the one step-up mechanism: a sensitive action needs
// a second-factor check within maxAge. Otherwise a page (GET) sends the
// person to confirm it is them and back; a form (POST) is answered with
// the confirmation form in its place, carrying what they typed (except
// passwords and codes) back to the same action, which then goes on with
// it. It returns nil when it answered.
func (s *Server) requireRecentAuth(w http.ResponseWriter, r *http.Request, maxAge time.Duration) *signedIn {
	u := s.requireMFA(w, r)
	if u == nil {
		return nil
	}
	if s.opts.Sessions.Recent(u.session, maxAge) {
		return u
	}
	if r.Method == http.MethodGet {
		http.Redirect(w, r, "/signin/verify?"+url.Values{"return": {r.URL.RequestURI()}}.Encode(), http.StatusSeeOther)
		return nil
	}
	f := newForm()
	if code := r.PostFormValue(stepUpField); code != "" {
		if s.limited(w, r) {
			return nil
		}
		method, err := s.opts.Auth.StepUp(r.Context(), u.account, code, clientAddr(r), hex.EncodeToString(u.session.IDHash))
		var te *identity.ThrottledError
		switch {
		case err == nil:
			tok, err := s.renew(r, u, method)
			if err != nil {
				s.renderError(w, r, err)
				return nil
			}
			http.SetCookie(w, s.opts.Sessions.Cookie(tok))
			sess, err := s.opts.Sessions.Lookup(r.Context(), tok)
			if err != nil {
				s.renderError(w, r, err)
				return nil
			}
			return &signedIn{token: tok, session: sess, account: u.account}
		case errors.As(err, &te):
			f.Extra["Wait"] = int(te.Wait.Seconds()) + 1
			f.Errors[""] = "signin.throttled"
		case errors.Is(err, identity.ErrBadCode):
			f.Errors["code"] = "verify.wrong"
		default:
			s.renderError(w, r, err)
			return nil
		}
	}
	var carry [][2]string
	dropped := false
	for k, vs := range r.PostForm {
		if k == stepUpField || strings.Contains(k, "password") || k == "code" {
			dropped = dropped || k != stepUpField
			continue
		}
		for _, v := range vs {
			carry = append(carry, [2]string{k, v})
		}
	}
	slices.SortStableFunc(carry, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	f.Extra["StepUp"] = r.URL.Path
	f.Extra["Carry"] = carry
	f.Extra["Dropped"] = dropped
	if err := s.verifyForm(w, r, u, f, http.StatusUnauthorized); err != nil {
		s.renderError(w, r, err)
	}
	return nil
}

// stepUpField carries the second-factor code of a step-up made in place.
const stepUpField = "stepup_code"

// sessionRow is one line of the account security page.
type sessionRow struct {
	ID       string
	Device   string
	Address  string
	Place    string // approximate, from a GeoIP database when configured
	LastSeen time.Time
	Current  bool
}

func (s *Server) showAccountSecurity(w http.ResponseWriter, r *http.Request) error {
	u := s.requireMFA(w, r)
	if u == nil {
		return nil
	}
	return s.accountSecurity(w, r, u, "", http.StatusOK)
}

// accountSecurity shows the account security page, with errID (a
// catalogue id) at the top when an action there was refused.
func (s *Server) accountSecurity(w http.ResponseWriter, r *http.Request, u *signedIn, errID string, status int) error {
	ctx := r.Context()
	list, err := s.opts.Sessions.List(ctx, u.account.ID)
	if err != nil {
		return err
	}
	fs, err := s.opts.Auth.Store.Factors(ctx, u.account.ID)
	if err != nil {
		return err
	}
	f := newForm()
	if errID != "" {
		f.Errors[""] = errID
	}
	lang := s.translator(w, r).Tag.String()
	var rows []sessionRow
	for _, ss := range list {
		row := sessionRow{ID: hex.EncodeToString(ss.IDHash), Device: device(ss.UserAgent), Address: ss.Address,
			LastSeen: ss.LastSeen, Current: string(ss.IDHash) == string(u.session.IDHash)}
		if s.opts.Places != nil {
			row.Place = s.opts.Places.Place(ss.Address, lang)
		}
		rows = append(rows, row)
	}
	f.Extra["Sessions"] = rows
	f.Extra["Places"] = s.opts.Places != nil
	f.Extra["Passkeys"] = fs.Passkeys
	f.Extra["HasTOTP"] = fs.AuthenticatorApp
	f.Extra["Email"] = u.account.Email
	f.Extra["DeviceName"] = device(r.UserAgent())
	return s.showForm(w, r, "account_security", "security.title", f, status)
}

func (s *Server) submitEndSession(w http.ResponseWriter, r *http.Request) error {
	u := s.requireMFA(w, r)
	if u == nil {
		return nil
	}
	ctx := r.Context()
	if r.PostFormValue("which") == "others" {
		if err := s.opts.Sessions.EndOthers(ctx, u.account.ID, u.session.IDHash); err != nil {
			return err
		}
		if err := s.opts.Auth.SessionEvent(ctx, u.account, true, "signed-out-others", clientAddr(r), hex.EncodeToString(u.session.IDHash)); err != nil {
			return err
		}
		return redirect(w, r, "/account/security")
	}
	id, err := hex.DecodeString(r.PostFormValue("id"))
	if err != nil || len(id) != 32 {
		return apperr.New(apperr.Invalid, "no such session")
	}
	if err := s.opts.Sessions.EndByHash(ctx, u.account.ID, id); err != nil {
		return err
	}
	if err := s.opts.Auth.SessionEvent(ctx, u.account, true, "signed-out-one", clientAddr(r), hex.EncodeToString(id)); err != nil {
		return err
	}
	return redirect(w, r, "/account/security")
}

// device names a browser and platform from a User-Agent, roughly.
func device(ua string) string {
	browser := "Browser"
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"Firefox/", "Firefox"}, {"Chrome/", "Chrome"}, {"Safari/", "Safari"},
	} {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	platform := ""
	for _, p := range []struct{ token, name string }{
		{"Android", "Android"}, {"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Windows", "Windows"},
		{"Mac OS X", "Mac"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, p.token) {
			platform = p.name
			break
		}
	}
	if platform == "" {
		return browser
	}
	return browser + " · " + platform
}

// submitNewRecoveryCodes replaces the recovery codes: a sensitive action,
// so it needs a second factor within the last five minutes.
func (s *Server) submitNewRecoveryCodes(w http.ResponseWriter, r *http.Request) error {
	u := s.requireRecentAuth(w, r, s.stepUpAge())
	if u == nil {
		return nil
	}
	codes, err := s.opts.Auth.Store.NewRecoveryCodes(r.Context(), u.account.ID)
	if err != nil {
		return err
	}
	if err := s.opts.Auth.AccountEvent(r.Context(), u.account, "recovery-codes-replaced", clientAddr(r), hex.EncodeToString(u.session.IDHash)); err != nil {
		return err
	}
	f := newForm()
	f.Extra["Codes"] = codes
	return s.showForm(w, r, "recovery_codes", "recovery.title", f, http.StatusOK)
}

// showChangePassword and submitChangePassword change the password: a
// sensitive action behind step-up; every other session is signed out.
func (s *Server) showChangePassword(w http.ResponseWriter, r *http.Request) error {
	if s.requireRecentAuth(w, r, s.stepUpAge()) == nil {
		return nil
	}
	return s.showForm(w, r, "password_change", "password.change.title", newForm(), http.StatusOK)
}

func (s *Server) submitChangePassword(w http.ResponseWriter, r *http.Request) error {
	u := s.requireRecentAuth(w, r, s.stepUpAge())
	if u == nil || s.limited(w, r) || s.hasherBusy(w, r) {
		return nil
	}
	f := newForm()
	pw := r.PostFormValue("password")
	checkNewPassword(f, pw, r.PostFormValue("password2"), u.account.Email)
	if r.PostFormValue("current_password") == "" {
		f.Errors["current_password"] = "password.current.missing"
	}
	if len(f.Errors) > 0 {
		return s.showForm(w, r, "password_change", "password.change.title", f, http.StatusUnprocessableEntity)
	}
	ctx := r.Context()
	sessionHex := hex.EncodeToString(u.session.IDHash)
	err := s.opts.Auth.ChangePassword(ctx, u.account, r.PostFormValue("current_password"),
		func() (string, error) { return s.opts.Auth.Hasher.Hash(ctx, pw) }, clientAddr(r), sessionHex)
	var te *identity.ThrottledError
	switch {
	case errors.As(err, &te):
		w.Header().Set("Retry-After", strconv.Itoa(int(te.Wait.Seconds())+1))
		f.Errors[""] = "signin.throttled"
		f.Extra["Wait"] = int(te.Wait.Seconds()) + 1
		return s.showForm(w, r, "password_change", "password.change.title", f, http.StatusTooManyRequests)
	case errors.Is(err, identity.ErrCurrentPassword):
		f.Errors["current_password"] = "password.current.wrong"
		return s.showForm(w, r, "password_change", "password.change.title", f, http.StatusUnauthorized)
	case err != nil:
		return err
	}
	if err := s.opts.Sessions.EndOthers(ctx, u.account.ID, u.session.IDHash); err != nil {
		return err
	}
	f.Extra["Done"] = true
	return s.showForm(w, r, "password_change", "password.change.title", f, http.StatusOK)
}
