package identity

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"math/big"
	"strings"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/sqldb"
)

// Proving the address given at activation: a 6-digit code sent to it,
// valid 15 minutes; ten tries a day, whatever the number of codes sent
// (a new code does not give new tries, or the code could be guessed by
// asking for codes), each taken before the code is compared. Until then
// the account signs in to this step only.
const (
	EmailVerifyValid    = 15 * time.Minute
	EmailVerifyAttempts = 10
	emailVerifyWindow   = 24 * time.Hour
)

// ErrEmailVerify is a wrong, expired or used-up code.
var ErrEmailVerify = apperr.New(apperr.Invalid, "that code is not right, or it expired; send a new one")

// StartEmailVerification makes a new code for the account's address, which
// replaces any earlier one, and queues it in the same transaction.
func (a *Auth) StartEmailVerification(ctx context.Context, acct *Account) error {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return err
	}
	code := fmt.Sprintf("%06d", n.Int64())
	now := a.Store.now()
	return a.Store.db.Write(ctx, func(tx *sqldb.Tx) error {
		h := emailCodeHash("verify:"+acct.ID+":"+acct.Email, code)
		// Within the window the tries carry over to the new code.
		res, err := tx.Exec(ctx, "UPDATE email_verification SET code_hash = ?, expires = ? WHERE account_id = ? AND created > ?",
			h, now.Add(EmailVerifyValid).UnixMicro(), acct.ID, now.Add(-emailVerifyWindow).UnixMicro())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if _, err := tx.Exec(ctx, "DELETE FROM email_verification WHERE account_id = ?", acct.ID); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "INSERT INTO email_verification (account_id, code_hash, created, expires) VALUES (?, ?, ?, ?)",
				acct.ID, h, now.UnixMicro(), now.Add(EmailVerifyValid).UnixMicro()); err != nil {
				return err
			}
		}
		return a.queueMail(ctx, tx, "email-verify-code", acct.ID, &mailSecret{Code: code})
	})
}

// ConfirmEmailVerification marks the account's address proven if code is
// the one sent to it.
func (a *Auth) ConfirmEmailVerification(ctx context.Context, acct *Account, code, addr, sessionHex string) error {
	now := a.Store.now().UnixMicro()
	var ok bool
	err := a.Store.db.Write(ctx, func(tx *sqldb.Tx) error {
		var err error
		if ok, err = a.Store.proveEmail(ctx, tx, acct, code, now); err != nil {
			return err
		}
		// The try, the change and the record commit together.
		if !ok {
			return a.recordTx(ctx, tx, acct, audit.SubtypeActivation, audit.MinorFailure, "email-verify-refused", addr, sessionHex)
		}
		return a.recordTx(ctx, tx, acct, audit.SubtypeActivation, audit.Success, "email-verified", addr, sessionHex)
	})
	if err != nil {
		return err
	}
	a.chain(ctx)
	if !ok {
		return ErrEmailVerify
	}
	acct.EmailVerified = time.UnixMicro(now).UTC()
	return nil
}

// proveEmail takes one try and, if code is right, marks the address proven.
func (s *Store) proveEmail(ctx context.Context, tx *sqldb.Tx, acct *Account, code string, now int64) (bool, error) {
	res, err := tx.Exec(ctx, "UPDATE email_verification SET attempts = attempts + 1 WHERE account_id = ? AND attempts < ? AND expires > ?",
		acct.ID, EmailVerifyAttempts, now)
	if err != nil {
		return false, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return false, nil // no code, expired, or no tries left
	}
	var h []byte
	if err := tx.QueryRow(ctx, "SELECT code_hash FROM email_verification WHERE account_id = ?", acct.ID).Scan(&h); err != nil {
		return false, err
	}
	if subtle.ConstantTimeCompare(h, emailCodeHash("verify:"+acct.ID+":"+acct.Email, strings.TrimSpace(code))) != 1 {
		return false, nil // the try is kept
	}
	if _, err := tx.Exec(ctx, "UPDATE account SET email_verified = ? WHERE id = ?", now, acct.ID); err != nil {
		return false, err
	}
	_, err = tx.Exec(ctx, "DELETE FROM email_verification WHERE account_id = ?", acct.ID)
	return err == nil, err
}
