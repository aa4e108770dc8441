package web

import (
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"time"

	"carefront/internal/apperr"
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
	case u.session.Level != session.LevelMFA:
		http.Redirect(w, r, "/signin/verify", http.StatusSeeOther)
		return nil
	}
	return u
}

// StepUpAge is how recent the second factor must be for sensitive actions.
const StepUpAge = 5 * time.Minute

// requireRecentAuth is the one step-up mechanism: a sensitive action needs
// a second-factor check within maxAge; otherwise the person re-verifies
// and comes back to the page they were on.
func (s *Server) requireRecentAuth(w http.ResponseWriter, r *http.Request, maxAge time.Duration) *signedIn {
	u := s.requireMFA(w, r)
	if u == nil {
		return nil
	}
	if !s.opts.Sessions.Recent(u.session, maxAge) {
		back := r.URL.Path
		if r.Method != http.MethodGet {
			back = r.Header.Get("Referer")
			if pu, err := url.Parse(back); err != nil || pu.Host != "" && pu.Host != r.Host {
				back = "/"
			} else {
				back = pu.Path
			}
		}
		http.Redirect(w, r, "/signin/verify?"+url.Values{"return": {back}}.Encode(), http.StatusSeeOther)
		return nil
	}
	return u
}

// localPath admits only paths on this site as a place to return to.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.Contains(p, "\\") {
		return "/"
	}
	return p
}

// sessionRow is one line of the account security page.
type sessionRow struct {
	ID       string
	Device   string
	Address  string
	LastSeen time.Time
	Current  bool
}

func (s *Server) showAccountSecurity(w http.ResponseWriter, r *http.Request) error {
	u := s.requireMFA(w, r)
	if u == nil {
		return nil
	}
	list, err := s.opts.Sessions.List(r.Context(), u.account.ID)
	if err != nil {
		return err
	}
	f := newForm()
	var rows []sessionRow
	for _, ss := range list {
		rows = append(rows, sessionRow{ID: hex.EncodeToString(ss.IDHash), Device: device(ss.UserAgent), Address: ss.Address,
			LastSeen: ss.LastSeen, Current: string(ss.IDHash) == string(u.session.IDHash)})
	}
	f.Extra["Sessions"] = rows
	return s.showForm(w, r, "account_security", "security.title", f, http.StatusOK)
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
	u := s.requireRecentAuth(w, r, StepUpAge)
	if u == nil {
		return nil
	}
	codes, err := s.opts.Auth.Store.NewRecoveryCodes(r.Context(), u.account.ID)
	if err != nil {
		return err
	}
	if err := s.opts.Auth.SessionEvent(r.Context(), u.account, false, "recovery-codes-replaced", clientAddr(r), hex.EncodeToString(u.session.IDHash)); err != nil {
		return err
	}
	f := newForm()
	f.Extra["Codes"] = codes
	return s.showForm(w, r, "recovery_codes", "recovery.title", f, http.StatusOK)
}

// showChangePassword and submitChangePassword change the password: a
// sensitive action behind step-up; every other session is signed out.
func (s *Server) showChangePassword(w http.ResponseWriter, r *http.Request) error {
	if s.requireRecentAuth(w, r, StepUpAge) == nil {
		return nil
	}
	return s.showForm(w, r, "password_change", "password.change.title", newForm(), http.StatusOK)
}

func (s *Server) submitChangePassword(w http.ResponseWriter, r *http.Request) error {
	u := s.requireRecentAuth(w, r, StepUpAge)
	if u == nil || s.hasherBusy(w, r) {
		return nil
	}
	f := newForm()
	pw := r.PostFormValue("password")
	checkNewPassword(f, pw, r.PostFormValue("password2"), u.account.Email)
	if len(f.Errors) > 0 {
		return s.showForm(w, r, "password_change", "password.change.title", f, http.StatusUnprocessableEntity)
	}
	ctx := r.Context()
	hash, err := s.opts.Auth.Hasher.Hash(ctx, pw)
	if err != nil {
		return err
	}
	if err := s.opts.Auth.Store.SetPasswordHash(ctx, u.account.ID, hash); err != nil {
		return err
	}
	if err := s.opts.Sessions.EndOthers(ctx, u.account.ID, u.session.IDHash); err != nil {
		return err
	}
	if err := s.opts.Auth.SessionEvent(ctx, u.account, false, "password-changed", clientAddr(r), hex.EncodeToString(u.session.IDHash)); err != nil {
		return err
	}
	s.opts.Auth.Notice(ctx, u.account, "password-changed")
	f.Extra["Done"] = true
	return s.showForm(w, r, "password_change", "password.change.title", f, http.StatusOK)
}
