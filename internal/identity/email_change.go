package identity

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/sqldb"
)

// Changing the email address: the new address must prove it is the
// person's by a code sent to it; the old address is told once the change
// is made, and other sessions end. Starting a change is a step-up action
// (the web layer asks for a recent second factor first).
const (
	EmailChangeValid    = 15 * time.Minute
	EmailChangeAttempts = 5
)

// ErrEmailTaken is a new address another account took between the start
// of a change and its confirmation (the person knows the code, so the
// address was free when they started).
var ErrEmailTaken = apperr.New(apperr.Conflict, "another account uses this email address")

// ErrEmailChange is a wrong, expired or used-up confirmation code.
var ErrEmailChange = apperr.New(apperr.Invalid, "that code is not right, or it expired; start the change again")

// StartEmailChange records a pending change to newEmail and queues the
// code to it. Whether another account uses newEmail is not told: the
// answer is the same, a pending change is recorded the same way (with a
// code nobody is sent, so it can never be confirmed), and the owner of the
// address is told that someone tried to use it, without learning who.
func (a *Auth) StartEmailChange(ctx context.Context, acct *Account, newEmail, addr, sessionHex string) error {
	email, err := NormalizeEmail(newEmail)
	if err != nil {
		return err
	}
	if email == acct.Email {
		return apperr.New(apperr.Invalid, "this is your address already")
	}
	owner, err := a.Store.AccountByEmail(ctx, email)
	if err != nil && !errors.Is(err, ErrNoAccount) {
		return err
	}
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return err
	}
	code := fmt.Sprintf("%06d", n.Int64())
	now := a.Store.now()
	err = a.Store.db.Write(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM email_change WHERE account_id = ?", acct.ID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO email_change (account_id, new_email, code_hash, created, expires) VALUES (?, ?, ?, ?, ?)",
			acct.ID, email, emailCodeHash(acct.ID+":"+email, code), now.UnixMicro(), now.Add(EmailChangeValid).UnixMicro())
		if err != nil {
			return err
		}
		if err := a.recordTx(ctx, tx, acct, audit.SubtypeAccountChange, audit.Success, "email-change-started", addr, sessionHex); err != nil {
			return err
		}
		if owner != nil {
			return a.queueMail(ctx, tx, "email-in-use", owner.ID, &mailSecret{})
		}
		return a.queueMail(ctx, tx, "email-change-code", acct.ID, &mailSecret{Code: code, To: email})
	})
	if err != nil {
		return err
	}
	a.chain(ctx)
	return nil
}

// PendingEmail is the address a change waits to confirm, or "".
func (s *Store) PendingEmail(ctx context.Context, accountID string) (string, error) {
	var e string
	err := s.db.ReadOne(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT new_email FROM email_change WHERE account_id = ? AND expires > ? AND attempts < ?",
			accountID, s.now().UnixMicro(), EmailChangeAttempts).Scan(&e)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return e, err
}

// ConfirmEmailChange makes the pending change if code is right: the
// account's address becomes the new one, the old address is told, and the
// change is audited. A wrong code counts toward the five tries.
func (a *Auth) ConfirmEmailChange(ctx context.Context, acct *Account, code, addr, sessionHex string) (string, error) {
	now := a.Store.now()
	var (
		newEmail string
		wrong    bool
	)
	err := a.Store.db.Write(ctx, func(tx *sqldb.Tx) error {
		// The try is taken before the code is compared, in one statement,
		// so concurrent tries (on one instance or several) cannot compare
		// more than EmailChangeAttempts codes.
		res, err := tx.Exec(ctx, "UPDATE email_change SET attempts = attempts + 1 WHERE account_id = ? AND attempts < ? AND expires >= ?",
			acct.ID, EmailChangeAttempts, now.UnixMicro())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrEmailChange // none pending, expired, or no tries left
		}
		var h []byte
		if err := tx.QueryRow(ctx, "SELECT new_email, code_hash FROM email_change WHERE account_id = ?", acct.ID).Scan(&newEmail, &h); err != nil {
			return err
		}
		if subtle.ConstantTimeCompare(h, emailCodeHash(acct.ID+":"+newEmail, strings.TrimSpace(code))) != 1 {
			wrong = true
			return nil // the try is kept: the transaction commits
		}
		var taken int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM account WHERE email = ?", newEmail).Scan(&taken); err != nil {
			return err
		}
		if taken > 0 {
			return ErrEmailTaken
		}
		if _, err := tx.Exec(ctx, "UPDATE account SET email = ?, email_verified = ? WHERE id = ?", newEmail, now.UnixMicro(), acct.ID); err != nil {
			return err
		}
		if _, err = tx.Exec(ctx, "DELETE FROM email_change WHERE account_id = ?", acct.ID); err != nil {
			return err
		}
		if err := a.recordTx(ctx, tx, acct, audit.SubtypeAccountChange, audit.Success, "email-changed", addr, sessionHex); err != nil {
			return err
		}
		// To the old address, which the job could no longer read from
		// the account: sealed in the job.
		return a.queueMail(ctx, tx, "email-changed", acct.ID, &mailSecret{To: acct.Email})
	})
	if err == nil && wrong {
		err = ErrEmailChange
	}
	if err != nil {
		a.record(ctx, acct, audit.SubtypeAccountChange, audit.MinorFailure, "email-change-refused", addr, sessionHex)
		return "", err
	}
	a.chain(ctx)
	return newEmail, nil
}
