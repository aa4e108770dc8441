package identity

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
	"unicode"

	"carefront/internal/apperr"
	"carefront/internal/sqldb"
)

// Staff roles. They travel in the principal to the access decision: a
// clinician reads the records of patients they have a care relationship
// with; the other roles see no clinical data.
var StaffRoles = []string{"clinician", "support", "security-officer", "admin"}

// StaffSetupValid is how long a staff member's setup link works.
const StaffSetupValid = 72 * time.Hour

// NewStaff is a staff account to create.
type NewStaff struct {
	Email, Role string
	// Name is the name patients see in their access log (required).
	Name string
	// PractitionerID is the clinician's Practitioner resource id; only a
	// clinician has one.
	PractitionerID string
}

// CreateStaff adds a staff account without a password and returns a
// one-time setup code for it: the staff member chooses a password and
// must then enrol an authenticator app (or, later, a passkey).
func (s *Store) CreateStaff(ctx context.Context, n NewStaff) (*Account, string, time.Time, error) {
	ok := false
	for _, r := range StaffRoles {
		ok = ok || r == n.Role
	}
	if !ok {
		return nil, "", time.Time{}, apperr.New(apperr.Invalid, "role must be clinician, support, security-officer or admin")
	}
	name := strings.TrimSpace(n.Name)
	if name == "" || len(name) > 100 || strings.ContainsFunc(name, unicode.IsControl) {
		return nil, "", time.Time{}, apperr.New(apperr.Invalid, "give the staff member's name, up to 100 characters")
	}
	if n.PractitionerID != "" && n.Role != "clinician" {
		return nil, "", time.Time{}, apperr.New(apperr.Invalid, "only a clinician is linked to a Practitioner")
	}
	a := &Account{Kind: Staff, Email: n.Email, StaffRole: n.Role, DisplayName: name, PractitionerID: n.PractitionerID}
	if err := s.CreateAccount(ctx, a); err != nil {
		return nil, "", time.Time{}, err
	}
	code, expires, err := s.inviteAccount(ctx, a.ID)
	return a, code, expires, err
}

func (s *Store) inviteAccount(ctx context.Context, accountID string) (string, time.Time, error) {
	code := newCode()
	now := s.now()
	expires := now.Add(StaffSetupValid).UTC()
	err := s.db.Write(ctx, func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO activation (code_hash, account_id, created, expires) VALUES (?, ?, ?, ?)",
			activationHash(code), accountID, now.UnixMicro(), expires.UnixMicro())
		return err
	})
	return code, expires, err
}

// StaffSetupAccount returns the staff account a setup code is for.
func (s *Store) StaffSetupAccount(ctx context.Context, code string) (*Account, error) {
	var (
		accountID sql.NullString
		expires   int64
		used      sql.NullInt64
	)
	err := s.db.ReadOne(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT account_id, expires, used_at FROM activation WHERE code_hash = ?", activationHash(code)).Scan(&accountID, &expires, &used)
	})
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (!accountID.Valid || used.Valid || !s.now().Before(time.UnixMicro(expires)))) {
		return nil, ErrActivation
	}
	if err != nil {
		return nil, err
	}
	return s.AccountByID(ctx, accountID.String)
}

// CompleteStaffSetup spends the code and sets the password hash.
func (s *Store) CompleteStaffSetup(ctx context.Context, code, accountID, passwordHash string) error {
	now := s.now()
	return s.db.Write(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, "UPDATE activation SET used_at = ? WHERE code_hash = ? AND account_id = ? AND used_at IS NULL AND expires > ?",
			now.UnixMicro(), activationHash(code), accountID, now.UnixMicro())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrActivation
		}
		_, err = tx.Exec(ctx, "UPDATE account SET password_hash = ? WHERE id = ?", passwordHash, accountID)
		return err
	})
}

// SetStaffProfile sets a staff account's name and Practitioner link.
func (s *Store) SetStaffProfile(ctx context.Context, accountID, name, practitionerID string) error {
	return s.db.Write(ctx, func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE account SET display_name = ?, practitioner_id = ? WHERE id = ? AND kind = 'staff'", nullStr(name), nullStr(practitionerID), accountID)
		return err
	})
}

// StaffClinician is a clinician's staff account with the Practitioner it
// is in the clinical record.
type StaffClinician struct {
	AccountID, PractitionerID string
}

// Clinicians lists the staff accounts of role clinician that are linked
// to a Practitioner and have finished their set-up (a password is set).
func (s *Store) Clinicians(ctx context.Context) ([]StaffClinician, error) {
	var out []StaffClinician
	err := s.db.Read(ctx, func(tx *sqldb.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, practitioner_id FROM account WHERE kind = 'staff' AND staff_role = 'clinician'
			AND practitioner_id IS NOT NULL AND practitioner_id <> '' AND password_hash IS NOT NULL ORDER BY id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c StaffClinician
			if err := rows.Scan(&c.AccountID, &c.PractitionerID); err != nil {
				return err
			}
			out = append(out, c)
		}
		return rows.Err()
	})
	return out, err
}
