package identity

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/sqldb"
)

// Staff roles. They travel in the principal to the access decision; there
// is no staff console yet.
var StaffRoles = []string{"clinician", "support", "security-officer", "admin"}

// StaffSetupValid is how long a staff member's setup link works.
const StaffSetupValid = 72 * time.Hour

// CreateStaff adds a staff account without a password and returns a
// one-time setup code for it: the staff member chooses a password and
// must then enrol an authenticator app (or, later, a passkey).
func (s *Store) CreateStaff(ctx context.Context, email, role string) (*Account, string, time.Time, error) {
	ok := false
	for _, r := range StaffRoles {
		ok = ok || r == role
	}
	if !ok {
		return nil, "", time.Time{}, apperr.New(apperr.Invalid, "role must be clinician, support, security-officer or admin")
	}
	a := &Account{Kind: Staff, Email: email, StaffRole: role}
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
