package web

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"carefront/internal/access"
	"carefront/internal/identity"
	"carefront/internal/session"
)

// The signed-in person: the session cookie looked up on every request,
// sessions started and renewed, and who the person is to access.Decide.
// The rules live in identity (who you are) and session (staying signed in).

type signedInKey struct{}

// signedIn is the person behind a request's session cookie.
type signedIn struct {
	token   string
	session *session.Session
	account *identity.Account
	// viewing is whose record the request is for, once a record page or
	// view has resolved it (Server.patient).
	viewing *viewing
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
		if m == nil || strings.HasPrefix(r.URL.Path, "/static/") || r.URL.Path == "/healthz" || r.URL.Path == "/readyz" ||
			(strings.HasPrefix(r.URL.Path, "/shl/") && r.URL.Path != "/shl/view") {
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

// principal is who the signed-in person is to the access decision.
func principal(u *signedIn, r *http.Request) access.Principal {
	p := access.Principal{User: "Person/" + u.account.ID, Address: clientAddr(r), Role: u.account.StaffRole}
	if u.account.Kind == identity.Staff {
		p.Name = u.account.DisplayName
		if u.account.PractitionerID != "" {
			p.Practitioner = "Practitioner/" + u.account.PractitionerID
		}
	}
	if u.session.Level == session.LevelMFA && !u.account.EmailVerified.IsZero() {
		p.Patient = u.account.PatientID // no clinical data on one factor, nor before the address is proven
	}
	return p
}
