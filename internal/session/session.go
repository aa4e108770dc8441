// Package session keeps server-side browser sessions: a random 256-bit id
// in a __Host- cookie (Secure, HttpOnly, SameSite=Lax), stored only as its
// SHA-256 hash, with an idle timeout and an absolute lifetime enforced on
// every request, a new id at sign-in and step-up, per-account listing and
// sign-out everywhere.
//
// carefront keeps its own small package rather than alexedwards/scs (the
// design's first choice): scs stores a session as an opaque blob under its
// token, and the account security page needs sessions as rows it can list,
// revoke per account and compare step-up times on.
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"carefront/internal/sqldb"
)

// Levels of authentication a session carries.
const (
	LevelPassword = "password" // first factor only: may enrol a second factor, nothing else
	LevelMFA      = "mfa"      // two factors (or a passkey)
)

// CookieName is the session cookie. The __Host- prefix makes browsers
// refuse it unless it is Secure, host-only and for path /.
const CookieName = "__Host-carefront-session"

// Manager creates and checks sessions.
type Manager struct {
	db *sqldb.DB
	// Absolute is the longest a session lives (default 12h).
	Absolute time.Duration
	// TouchEvery limits last-activity writes to one per interval per
	// session (default 30s), so reading pages is not a write each time.
	TouchEvery time.Duration
	// Insecure drops the Secure flag and the __Host- prefix, for plain
	// http://localhost development only.
	Insecure bool
}

// NewManager returns a manager on db.
func NewManager(db *sqldb.DB) *Manager {
	return &Manager{db: db, Absolute: 12 * time.Hour, TouchEvery: 30 * time.Second}
}

// Session is one signed-in browser.
type Session struct {
	IDHash    []byte
	AccountID string
	Created   time.Time
	LastSeen  time.Time
	Expires   time.Time // absolute end
	Idle      time.Duration
	MFAAt     time.Time // last second-factor check; zero if none
	Level     string
	UserAgent string
	Address   string
}

// IdleEnds is when the session ends unless used before.
func (s *Session) IdleEnds() time.Time { return s.LastSeen.Add(s.Idle) }

// ErrNoSession means there is no live session for the cookie: absent,
// forged, expired, idle too long or signed out.
var ErrNoSession = errors.New("session: not signed in")

func hash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func newToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func (m *Manager) now() time.Time { return m.db.Now().UTC().Truncate(time.Microsecond) }

// Create starts a session for an account and returns its token (for the
// cookie; it is not stored).
func (m *Manager) Create(ctx context.Context, accountID, level string, idle time.Duration, userAgent, address string) (string, *Session, error) {
	tok, err := newToken()
	if err != nil {
		return "", nil, err
	}
	now := m.now()
	s := &Session{IDHash: hash(tok), AccountID: accountID, Created: now, LastSeen: now, Expires: now.Add(m.Absolute),
		Idle: idle, Level: level, UserAgent: clip(userAgent, 256), Address: clip(address, 64)}
	if level == LevelMFA {
		s.MFAAt = now
	}
	err = m.db.Write(ctx, func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO session (id_hash, account_id, created, last_seen, expires, mfa_at, level, idle, user_agent, address)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, s.IDHash, accountID, now.UnixMicro(), now.UnixMicro(), s.Expires.UnixMicro(),
			micros(s.MFAAt), level, int64(idle/time.Microsecond), s.UserAgent, s.Address)
		return err
	})
	if err != nil {
		return "", nil, err
	}
	return tok, s, nil
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

const cols = "id_hash, account_id, created, last_seen, expires, idle, mfa_at, level, user_agent, address"

func scan(row interface{ Scan(...any) error }) (*Session, error) {
	var (
		s                            Session
		created, seen, expires, idle int64
		mfa                          sql.NullInt64
	)
	if err := row.Scan(&s.IDHash, &s.AccountID, &created, &seen, &expires, &idle, &mfa, &s.Level, &s.UserAgent, &s.Address); err != nil {
		return nil, err
	}
	s.Created, s.LastSeen, s.Expires = time.UnixMicro(created).UTC(), time.UnixMicro(seen).UTC(), time.UnixMicro(expires).UTC()
	s.Idle = time.Duration(idle) * time.Microsecond
	if mfa.Valid {
		s.MFAAt = time.UnixMicro(mfa.Int64).UTC()
	}
	return &s, nil
}

// Touch records activity now, whatever TouchEvery says (the idle warning's
// "Stay signed in").
func (m *Manager) Touch(ctx context.Context, token string) error {
	return m.db.Write(ctx, func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE session SET last_seen = ? WHERE id_hash = ? AND revoked_at IS NULL", m.now().UnixMicro(), hash(token))
		return err
	})
}

// Lookup returns the live session for a token and records the activity.
// A session past its idle timeout or absolute lifetime is ended here.
func (m *Manager) Lookup(ctx context.Context, token string) (*Session, error) {
	if len(token) != 43 {
		return nil, ErrNoSession
	}
	h := hash(token)
	var s *Session
	err := m.db.ReadOne(ctx, func(tx *sqldb.Tx) error {
		var err error
		s, err = scan(tx.QueryRow(ctx, "SELECT "+cols+" FROM session WHERE id_hash = ? AND revoked_at IS NULL", h))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, err
	}
	now := m.now()
	if !now.Before(s.Expires) || !now.Before(s.IdleEnds()) {
		m.revoke(ctx, "id_hash = ?", h)
		return nil, ErrNoSession
	}
	if now.Sub(s.LastSeen) >= m.TouchEvery {
		err := m.db.Write(ctx, func(tx *sqldb.Tx) error {
			_, err := tx.Exec(ctx, "UPDATE session SET last_seen = ? WHERE id_hash = ? AND revoked_at IS NULL", now.UnixMicro(), h)
			return err
		})
		if err != nil {
			return nil, err
		}
		s.LastSeen = now
	}
	return s, nil
}

// Check is what a renewal records about a second factor just checked.
type Check int

const (
	// NoCheck records nothing (a new id only).
	NoCheck Check = iota
	// WeakCheck makes the session two-factor but is no step-up: an emailed
	// code, which the mailbox alone gives, must never let anyone replace
	// factors, the email address or the password.
	WeakCheck
	// StrongCheck makes the session two-factor and recent: an
	// authenticator code, a recovery code or a passkey.
	StrongCheck
)

// Renew replaces a session's id (at sign-in of a second factor and at
// step-up), recording the check made, and returns the new token. The old
// token stops working.
func (m *Manager) Renew(ctx context.Context, token string, check Check) (string, error) {
	tok, err := newToken()
	if err != nil {
		return "", err
	}
	now := m.now()
	err = m.db.Write(ctx, func(tx *sqldb.Tx) error {
		q := "UPDATE session SET id_hash = ?, last_seen = ? WHERE id_hash = ? AND revoked_at IS NULL"
		args := []any{hash(tok), now.UnixMicro(), hash(token)}
		switch check {
		case WeakCheck:
			q = "UPDATE session SET id_hash = ?, last_seen = ?, level = ? WHERE id_hash = ? AND revoked_at IS NULL"
			args = []any{hash(tok), now.UnixMicro(), LevelMFA, hash(token)}
		case StrongCheck:
			q = "UPDATE session SET id_hash = ?, last_seen = ?, mfa_at = ?, level = ? WHERE id_hash = ? AND revoked_at IS NULL"
			args = []any{hash(tok), now.UnixMicro(), now.UnixMicro(), LevelMFA, hash(token)}
		}
		res, err := tx.Exec(ctx, q, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrNoSession
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return tok, nil
}

// Recent reports whether the session's last strong second-factor check is
// within maxAge: the step-up rule for sensitive actions.
func (m *Manager) Recent(s *Session, maxAge time.Duration) bool {
	return s.Level == LevelMFA && !s.MFAAt.IsZero() && m.now().Sub(s.MFAAt) <= maxAge
}

// End signs one session out, server-side.
func (m *Manager) End(ctx context.Context, token string) error {
	return m.revoke(ctx, "id_hash = ?", hash(token))
}

// EndByHash signs out one of an account's sessions (the account security
// page names sessions by hash).
func (m *Manager) EndByHash(ctx context.Context, accountID string, idHash []byte) error {
	return m.revoke(ctx, "account_id = ? AND id_hash = ?", accountID, idHash)
}

// EndOthers signs out every session of the account but keep (a hash; nil
// ends them all).
func (m *Manager) EndOthers(ctx context.Context, accountID string, keep []byte) error {
	if keep == nil {
		return m.revoke(ctx, "account_id = ?", accountID)
	}
	return m.revoke(ctx, "account_id = ? AND id_hash <> ?", accountID, keep)
}

func (m *Manager) revoke(ctx context.Context, where string, args ...any) error {
	return m.db.Write(ctx, func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE session SET revoked_at = ? WHERE revoked_at IS NULL AND "+where, append([]any{m.now().UnixMicro()}, args...)...)
		return err
	})
}

// List returns the account's live sessions, most recently active first.
func (m *Manager) List(ctx context.Context, accountID string) ([]*Session, error) {
	now := m.now().UnixMicro()
	var out []*Session
	err := m.db.Read(ctx, func(tx *sqldb.Tx) error {
		rows, err := tx.Query(ctx, "SELECT "+cols+" FROM session WHERE account_id = ? AND revoked_at IS NULL AND expires > ? ORDER BY last_seen DESC", accountID, now)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			s, err := scan(rows)
			if err != nil {
				return err
			}
			if s.IdleEnds().UnixMicro() > now {
				out = append(out, s)
			}
		}
		return rows.Err()
	})
	return out, err
}

// Cookie returns the session cookie for a token (MaxAge from the absolute
// lifetime; the server enforces the idle timeout).
func (m *Manager) Cookie(token string) *http.Cookie {
	c := &http.Cookie{Name: CookieName, Value: token, Path: "/", HttpOnly: true, Secure: true,
		SameSite: http.SameSiteLaxMode, MaxAge: int(m.Absolute / time.Second)}
	if m.Insecure {
		c.Name, c.Secure = "carefront-session", false
	}
	return c
}

// ClearCookie returns a cookie that removes the session cookie.
func (m *Manager) ClearCookie() *http.Cookie {
	c := m.Cookie("")
	c.MaxAge = -1
	return c
}

// Token reads the session token from a request's cookie.
func (m *Manager) Token(r *http.Request) string {
	c, err := r.Cookie(m.Cookie("").Name)
	if err != nil {
		return ""
	}
	return c.Value
}

// HashToken is how a token is stored (for EndOthers' keep).
func HashToken(token string) []byte { return hash(token) }

// PreviousSignIn is when the account's sign-in before the session with
// idHash began (ended or not), or zero when there was none: the home page
// shows what is new since then.
func (m *Manager) PreviousSignIn(ctx context.Context, accountID string, idHash []byte, created time.Time) (time.Time, error) {
	var at *int64
	err := m.db.Read(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT MAX(created) FROM session WHERE account_id = ? AND id_hash <> ? AND created < ? AND mfa_at IS NOT NULL",
			accountID, idHash, created.UnixMicro()).Scan(&at)
	})
	if err != nil || at == nil {
		return time.Time{}, err
	}
	return time.UnixMicro(*at).UTC(), nil
}
