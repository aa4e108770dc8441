package identity

import (
	"context"
	"errors"

	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/sqldb"
)

// ErrCurrentPassword is a wrong current password given to change it.
var ErrCurrentPassword = apperr.New(apperr.Unauthorized, "the current password is not right")

// ChangePassword replaces the password once the current one is given: a
// session left open (and a recent second factor) is not enough to take the
// account over. A wrong current password counts as a failed sign-in
// (throttling, lock). hashNew, the costly part, runs only after the current
// password was right. The notice to the owner is queued with the change.
func (a *Auth) ChangePassword(ctx context.Context, acct *Account, current string, hashNew func() (string, error), addr, sessionHex string) error {
	th, err := a.Store.CheckThrottle(ctx, acct.Email)
	if err != nil {
		return err
	}
	if th.Wait > 0 {
		if err := a.record(ctx, acct, audit.SubtypeLogin, audit.MinorFailure, "throttled", addr, sessionHex); err != nil {
			return err
		}
		return &ThrottledError{Wait: th.Wait}
	}
	ok, _, err := a.Hasher.Verify(ctx, acct.PasswordHash, current)
	if errors.Is(err, ErrBusy) {
		return err
	}
	if err != nil || !ok {
		locked, ferr := a.Store.RecordFailure(ctx, acct.Email)
		if ferr != nil {
			return ferr
		}
		if locked {
			a.Notice(ctx, acct, "locked")
		}
		if err := a.record(ctx, acct, audit.SubtypeAccountChange, audit.MinorFailure, "bad-current-password", addr, sessionHex); err != nil {
			return err
		}
		return ErrCurrentPassword
	}
	hash, err := hashNew()
	if err != nil {
		return err
	}
	err = a.Store.db.Write(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, "UPDATE account SET password_hash = ? WHERE id = ?", hash, acct.ID)
		if err := mustOne(res, err); err != nil {
			return err
		}
		if err := a.recordTx(ctx, tx, acct, audit.SubtypeAccountChange, audit.Success, "password-changed", addr, sessionHex); err != nil {
			return err
		}
		return a.noticeTx(ctx, tx, acct, "password-changed")
	})
	if err != nil {
		return err
	}
	a.chain(ctx)
	return nil
}
