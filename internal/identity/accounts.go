package identity

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
)

// Kind is what an account is for.
type Kind string

// The kinds.
const (
	Person Kind = "person" // a patient or someone acting for one
	Staff  Kind = "staff"
)

// Account is one person's sign-in identity.
type Account struct {
	ID           string
	Kind         Kind
	Email        string
	PasswordHash string
	PatientID    string // the person's own Patient id, if they are a patient
	StaffRole    string
	// DisplayName is a staff member's name as patients see it.
	DisplayName string
	// PractitionerID is the Practitioner resource that is a clinician in
	// the clinical record (their care relationships go through it).
	PractitionerID string
	Created        time.Time
	// EmailVerified is when the owner proved the address (a code sent to
	// it); zero until then, and an account is not usable before.
	EmailVerified time.Time
}

// Store keeps accounts and their factors.
type Store struct {
	db   *sqldb.DB
	keys *seal.Keys
	// EmailKey keys the hashes that stand for email addresses where an
	// address must not be kept (sign-in throttling of addresses with no
	// account, audit records of such attempts); nil uses an unkeyed hash
	// (tests).
	EmailKey []byte
}

// NewStore returns a store; keys seal authenticator seeds.
func NewStore(db *sqldb.DB, keys *seal.Keys) *Store { return &Store{db: db, keys: keys} }

// SealedColumns are the columns this package seals, for re-encryption
// after a key rotation.
var SealedColumns = []seal.Column{{Table: "account_totp", IDColumn: "account_id", Column: "seed"},
	{Table: "notice_pref", IDColumn: "account_id", Column: "phone"}}

func (s *Store) now() time.Time { return s.db.Now() }

func fromMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

// NormalizeEmail lower-cases and trims an address; it checks only that it
// looks like one (the activation mail proves it).
func NormalizeEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	at := strings.LastIndex(e, "@")
	if at < 1 || at == len(e)-1 || len(e) > 254 || strings.ContainsAny(e, " \t\r\n<>\"") || !strings.Contains(e[at:], ".") {
		return "", apperr.New(apperr.Invalid, "enter an email address like name@example.com")
	}
	return e, nil
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// CreateAccount adds an account; its email must be new.
func (s *Store) CreateAccount(ctx context.Context, a *Account) error {
	email, err := NormalizeEmail(a.Email)
	if err != nil {
		return err
	}
	if a.Kind != Person && a.Kind != Staff {
		return apperr.New(apperr.Invalid, "account kind must be person or staff")
	}
	a.Email = email
	if a.ID == "" {
		a.ID = newID()
	}
	a.Created = s.now().UTC().Truncate(time.Microsecond)
	return s.db.Write(ctx, func(tx *sqldb.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM account WHERE email = ?", email).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return apperr.New(apperr.Conflict, "an account with this email exists")
		}
		// Accounts made here (staff, demo) have addresses the clinic gave:
		// proven. Activation proves a person's own (Activate).
		a.EmailVerified = a.Created
		_, err := tx.Exec(ctx, "INSERT INTO account (id, kind, email, password_hash, patient_id, staff_role, display_name, practitioner_id, created, email_verified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			a.ID, string(a.Kind), email, nullStr(a.PasswordHash), nullStr(a.PatientID), nullStr(a.StaffRole), nullStr(a.DisplayName), nullStr(a.PractitionerID), a.Created.UnixMicro(), a.Created.UnixMicro())
		return err
	})
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

const accountCols = "id, kind, email, password_hash, patient_id, staff_role, display_name, practitioner_id, created, email_verified"

func scanAccount(row interface{ Scan(...any) error }) (*Account, error) {
	var (
		a                   Account
		kind                string
		hash, patient, role sql.NullString
		name, practitioner  sql.NullString
		verified            sql.NullInt64
		created             int64
	)
	if err := row.Scan(&a.ID, &kind, &a.Email, &hash, &patient, &role, &name, &practitioner, &created, &verified); err != nil {
		return nil, err
	}
	a.Kind, a.PasswordHash, a.PatientID, a.StaffRole = Kind(kind), hash.String, patient.String, role.String
	a.DisplayName, a.PractitionerID = name.String, practitioner.String
	a.Created, a.EmailVerified = time.UnixMicro(created).UTC(), fromMicros(verified)
	return &a, nil
}

// ErrNoAccount is returned for an unknown account. Callers that face the
// public must not tell it apart from a wrong password.
var ErrNoAccount = errors.New("identity: no such account")

// AccountByEmail finds an account by its (normalized) email.
func (s *Store) AccountByEmail(ctx context.Context, email string) (*Account, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return nil, ErrNoAccount
	}
	return s.account(ctx, "email", e)
}

// AccountByID finds an account by id.
func (s *Store) AccountByID(ctx context.Context, id string) (*Account, error) {
	return s.account(ctx, "id", id)
}

func (s *Store) account(ctx context.Context, col, v string) (*Account, error) {
	var a *Account
	err := s.db.ReadOne(ctx, func(tx *sqldb.Tx) error {
		var err error
		a, err = scanAccount(tx.QueryRow(ctx, "SELECT "+accountCols+" FROM account WHERE "+col+" = ?", v))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoAccount
	}
	return a, err
}

// SetPasswordHash replaces an account's password hash.
func (s *Store) SetPasswordHash(ctx context.Context, accountID, hash string) error {
	return s.db.Write(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, "UPDATE account SET password_hash = ? WHERE id = ?", hash, accountID)
		return mustOne(res, err)
	})
}

func mustOne(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrNoAccount
	}
	return nil
}

// Lockout policy: after FreeFailures failed sign-ins each further attempt
// waits twice as long as the one before (from 1 s up to MaxDelay); after
// LockAfter failures the account is locked for LockFor and its owner told.
const (
	FreeFailures = 3
	MaxDelay     = 60 * time.Second
	LockAfter    = 10
	LockFor      = 15 * time.Minute
)

// Throttle says whether a sign-in may be tried now; when not, Wait says
// for how long and Locked whether the account is locked.
type Throttle struct {
	Wait   time.Duration
	Locked bool
}

// EmailHash is a keyed hash of an email address as typed, normalized first
// so that case variants and spacing give one hash: the key throttling is
// counted under, for known and unknown addresses alike, and what names the
// requestor of a failed sign-in for an address with no account.
func (s *Store) EmailHash(email string) []byte {
	norm, err := NormalizeEmail(email)
	if err != nil {
		norm = strings.ToLower(strings.TrimSpace(email))
	}
	m := hmac.New(sha256.New, append([]byte("carefront-email:"), s.EmailKey...))
	m.Write([]byte(norm))
	return m.Sum(nil)
}

// CheckThrottle applies the progressive delay and lock of an email
// address (an account's, or one with no account), as every instance on the
// database sees them.
func (s *Store) CheckThrottle(ctx context.Context, email string) (Throttle, error) {
	var (
		failures            int
		lastFailure, locked sql.NullInt64
	)
	err := s.db.ReadOne(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT failures, last_failure, locked_until FROM signin_throttle WHERE key = ?", s.EmailHash(email)).
			Scan(&failures, &lastFailure, &locked)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return Throttle{}, nil
	}
	if err != nil {
		return Throttle{}, err
	}
	now := s.now()
	if locked.Valid {
		if until := time.UnixMicro(locked.Int64); now.Before(until) {
			return Throttle{Wait: until.Sub(now), Locked: true}, nil
		}
	}
	if failures < FreeFailures || !lastFailure.Valid {
		return Throttle{}, nil
	}
	delay := min(time.Second<<(failures-FreeFailures), MaxDelay)
	if next := time.UnixMicro(lastFailure.Int64).Add(delay); now.Before(next) {
		return Throttle{Wait: next.Sub(now)}, nil
	}
	return Throttle{}, nil
}

// RecordFailure counts a failed sign-in for an email address and reports
// whether it locked the address just now.
func (s *Store) RecordFailure(ctx context.Context, email string) (locked bool, err error) {
	now := s.now()
	key := s.EmailHash(email)
	err = s.db.Write(ctx, func(tx *sqldb.Tx) error {
		q := "SELECT failures FROM signin_throttle WHERE key = ?"
		if tx.Dialect() == sqldb.Postgres {
			q += " FOR UPDATE"
		}
		var n int
		err := tx.QueryRow(ctx, q, key).Scan(&n)
		if errors.Is(err, sql.ErrNoRows) {
			if _, err := tx.Exec(ctx, "INSERT INTO signin_throttle (key, failures) VALUES (?, 0) ON CONFLICT (key) DO NOTHING", key); err != nil {
				return err
			}
			err = tx.QueryRow(ctx, q, key).Scan(&n)
		}
		if err != nil {
			return err
		}
		n++
		var until any
		if n >= LockAfter {
			until, locked, n = now.Add(LockFor).UnixMicro(), true, 0
		}
		_, err = tx.Exec(ctx, "UPDATE signin_throttle SET failures = ?, last_failure = ?, locked_until = COALESCE(?, locked_until) WHERE key = ?",
			n, now.UnixMicro(), until, key)
		return err
	})
	return locked, err
}

// RecordSuccess clears an address's failure count.
func (s *Store) RecordSuccess(ctx context.Context, email string) error {
	return s.db.Write(ctx, func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, "DELETE FROM signin_throttle WHERE key = ?", s.EmailHash(email))
		return err
	})
}

// Recovery codes: 10 per account, 16 base32 characters (80 bits) shown as
// four groups, stored as SHA-256 hashes, each usable once.
const RecoveryCodes = 10

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func recoveryHash(code string) []byte {
	c := strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(code))
	h := sha256.Sum256([]byte("carefront-recovery:" + c))
	return h[:]
}

// NewRecoveryCodes replaces an account's recovery codes and returns the
// new ones, to be shown once.
func (s *Store) NewRecoveryCodes(ctx context.Context, accountID string) ([]string, error) {
	codes := make([]string, RecoveryCodes)
	for i := range codes {
		codes[i] = newCode()
	}
	err := s.db.Write(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM account_recovery_code WHERE account_id = ?", accountID); err != nil {
			return err
		}
		for _, c := range codes {
			if _, err := tx.Exec(ctx, "INSERT INTO account_recovery_code (account_id, code_hash) VALUES (?, ?)", accountID, recoveryHash(c)); err != nil {
				return err
			}
		}
		return nil
	})
	return codes, err
}

// UseRecoveryCode spends one code; a code used before, or not the
// account's, is refused.
func (s *Store) UseRecoveryCode(ctx context.Context, accountID, code string) (bool, error) {
	return s.spend(ctx, "UPDATE account_recovery_code SET used_at = ? WHERE account_id = ? AND code_hash = ? AND used_at IS NULL",
		s.now().UnixMicro(), accountID, recoveryHash(code))
}

// spend runs an UPDATE that marks one single-use secret used and reports
// whether it did: a secret used before, or not there, changes no row, so
// two requests racing with one secret cannot both succeed.
func (s *Store) spend(ctx context.Context, query string, args ...any) (bool, error) {
	var ok bool
	err := s.db.Write(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, query, args...)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		ok = n == 1
		return nil
	})
	return ok, err
}
