package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"errors"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"carefront/internal/apperr"
	"carefront/internal/sqldb"
)

// Activation: an invitation lasts ActivationValid; a code survives
// ActivationAttempts failed identity checks, then it is spent.
const (
	ActivationValid    = 14 * 24 * time.Hour
	ActivationAttempts = 5
)

// Demographics are what a person proves they know about their record.
type Demographics struct {
	BirthDate  string // YYYY-MM-DD
	FamilyName string
}

// PatientLookup returns the demographics on a patient's record; the caller
// wires it to the clinical data source.
type PatientLookup func(ctx context.Context, patientID string) (Demographics, error)

// newCode makes an 80-bit code shown as four groups of base32.
func newCode() string {
	var b [10]byte
	rand.Read(b[:])
	c := b32.EncodeToString(b[:])
	return c[0:4] + "-" + c[4:8] + "-" + c[8:12] + "-" + c[12:16]
}

func activationHash(code string) []byte {
	c := strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(code))
	h := sha256.Sum256([]byte("carefront-activation:" + c))
	return h[:]
}

// Invite makes a one-time activation code for a patient's record.
func (s *Store) Invite(ctx context.Context, patientID string) (code string, expires time.Time, err error) {
	if patientID == "" {
		return "", time.Time{}, apperr.New(apperr.Invalid, "name the patient, like Patient/123")
	}
	if _, err := s.patientAccount(ctx, patientID); err == nil {
		return "", time.Time{}, ErrPatientHasAccount
	} else if !errors.Is(err, ErrNoAccount) {
		return "", time.Time{}, err
	}
	code = newCode()
	now := s.now()
	expires = now.Add(ActivationValid).UTC()
	err = s.db.Write(ctx, func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO activation (code_hash, patient_id, created, expires) VALUES (?, ?, ?, ?)",
			activationHash(code), patientID, now.UnixMicro(), expires.UnixMicro())
		return err
	})
	return code, expires, err
}

// ErrActivation is the one answer to every failed activation, so the
// page says nothing about which part was wrong or whether the code exists.
var ErrActivation = apperr.New(apperr.Invalid, "we could not match that code, date of birth and last name; check them and try again, or ask your clinic for a new code")

// ErrPatientHasAccount is an activation for a record that has an account
// already: one account per patient (caregivers get their own access
// through the patient, not a second account for the record).
var ErrPatientHasAccount = apperr.New(apperr.Conflict, "this record has a carefront account already; sign in with it (\"Forgot your password?\" helps), or call your clinic")

// CheckActivation verifies a code against the person's date of birth and
// last name and returns the patient id. Every check takes one of the
// code's tries first, in one statement, so a burst of concurrent tries
// cannot check more than ActivationAttempts answers; a right answer and a
// wrong one do the same work. The code is spent when the account is made
// (Activate).
func (s *Store) CheckActivation(ctx context.Context, code string, who Demographics, lookup PatientLookup) (string, error) {
	h := activationHash(code)
	now := s.now().UnixMicro()
	var patient sql.NullString
	err := s.db.Write(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, "UPDATE activation SET attempts = attempts + 1 WHERE code_hash = ? AND used_at IS NULL AND attempts < ? AND expires > ?",
			h, ActivationAttempts, now)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrActivation // unknown, spent, burnt or expired
		}
		return tx.QueryRow(ctx, "SELECT patient_id FROM activation WHERE code_hash = ?", h).Scan(&patient)
	})
	if err != nil {
		return "", err
	}
	if !patient.Valid {
		return "", ErrActivation
	}
	rec, err := lookup(ctx, patient.String)
	if err != nil {
		return "", err
	}
	okDate := subtle.ConstantTimeCompare([]byte(strings.TrimSpace(who.BirthDate)), []byte(rec.BirthDate)) == 1 && rec.BirthDate != ""
	okName := subtle.ConstantTimeCompare([]byte(foldName(who.FamilyName)), []byte(foldName(rec.FamilyName))) == 1 && rec.FamilyName != ""
	if !okDate || !okName {
		return "", ErrActivation
	}
	if _, err := s.patientAccount(ctx, patient.String); err == nil {
		return "", ErrPatientHasAccount
	} else if !errors.Is(err, ErrNoAccount) {
		return "", err
	}
	return patient.String, nil
}

// patientAccount returns the person account of a patient's own record.
func (s *Store) patientAccount(ctx context.Context, patientID string) (*Account, error) {
	var a *Account
	err := s.db.ReadOne(ctx, func(tx *sqldb.Tx) error {
		var err error
		a, err = scanAccount(tx.QueryRow(ctx, "SELECT "+accountCols+" FROM account WHERE patient_id = ? AND kind = ?", patientID, string(Person)))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoAccount
	}
	return a, err
}

// AccountForPatient returns the person account of a patient's own
// record, or ErrNoAccount.
func (s *Store) AccountForPatient(ctx context.Context, patientID string) (*Account, error) {
	return s.patientAccount(ctx, patientID)
}

// foldName compares names as people type them: case, accents, spaces and
// hyphens do not matter ("Ortega-Demo" is "ortega demo" is "ORTEGA DEMO").
func foldName(s string) string {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, _ := transform.String(t, s)
	out = strings.ToLower(out)
	return strings.Join(strings.FieldsFunc(out, func(r rune) bool { return r == ' ' || r == '-' || r == '\'' }), " ")
}

// Activate spends the code and creates the person's account with their
// chosen email and password hash, in one transaction: a code activates
// one account, even when two browsers race, and a record gets one account.
// The address is not proven yet: the account is usable once the person
// types the code StartEmailVerification sends.
func (s *Store) Activate(ctx context.Context, code, patientID string, a *Account) error {
	email, err := NormalizeEmail(a.Email)
	if err != nil {
		return err
	}
	a.Email, a.Kind, a.PatientID = email, Person, patientID
	if a.ID == "" {
		a.ID = newID()
	}
	now := s.now()
	a.Created = now.UTC().Truncate(time.Microsecond)
	return s.db.Write(ctx, func(tx *sqldb.Tx) error {
		// The check that preceded took a try: the code must not have been
		// burnt by more than the tries allowed.
		res, err := tx.Exec(ctx, "UPDATE activation SET used_at = ? WHERE code_hash = ? AND patient_id = ? AND used_at IS NULL AND expires > ? AND attempts <= ?",
			now.UnixMicro(), activationHash(code), patientID, now.UnixMicro(), ActivationAttempts)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrActivation
		}
		var n int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM account WHERE email = ?", email).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return apperr.New(apperr.Conflict, "an account with this email exists; sign in instead, or use another address")
		}
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM account WHERE patient_id = ? AND kind = ?", patientID, string(Person)).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrPatientHasAccount
		}
		_, err = tx.Exec(ctx, "INSERT INTO account (id, kind, email, password_hash, patient_id, created) VALUES (?, ?, ?, ?, ?, ?)",
			a.ID, string(Person), email, nullStr(a.PasswordHash), patientID, a.Created.UnixMicro())
		if err != nil && strings.Contains(err.Error(), "patient") {
			return ErrPatientHasAccount // a race with another activation of the record, caught by its unique index
		}
		return err
	})
}
