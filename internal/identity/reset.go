package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/sqldb"
)

// ResetValid is how long a "forgot password" link works.
const ResetValid = 20 * time.Minute

// ErrReset is the one answer to a reset link that does not work: unknown,
// used, expired, or opened in another browser than the one that asked.
var ErrReset = apperr.New(apperr.Invalid, "this link does not work: it is more than 20 minutes old, was used already, or was opened in another browser than the one that asked for it; ask for a new one")

func token32() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// StartReset makes a reset link for the address, if it has an account, and
// queues it by mail. It returns the browser nonce to set as a cookie whether
// or not the account exists, and does the same work either way (the same
// queries, a sealed secret, one queued job and one audit record: for an
// unknown address the job sends nothing), so neither the answer, the cookie
// nor the time it takes reveals whether the account exists. Nothing here
// waits for a mail server.
func (a *Auth) StartReset(ctx context.Context, email, linkBase, addr string) (nonce string, err error) {
	nonce = token32()
	tok := token32()
	acct, err := a.Store.AccountByEmail(ctx, email)
	if err != nil && !errors.Is(err, ErrNoAccount) {
		return "", err
	}
	accountID := ""
	if acct != nil {
		accountID = acct.ID
	}
	now := a.Store.now()
	err = a.Store.db.Write(ctx, func(tx *sqldb.Tx) error {
		var recent int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM password_reset WHERE account_id = ? AND created > ?", accountID, now.Add(-ResetValid).UnixMicro()).Scan(&recent); err != nil {
			return err
		}
		link := &mailSecret{Link: linkBase + "?token=" + tok}
		switch {
		case acct == nil:
			// Nobody to write to: a job that sends nothing.
			if err := a.Audit.Stage(ctx, tx, a.unknownRecord(email, audit.SubtypePasswordReset, "reset-unknown-account", addr)); err != nil {
				return err
			}
			return a.queueMail(ctx, tx, "reset-link", "", link)
		case recent >= 3:
			// The person has links in their mail already.
			if err := a.recordTx(ctx, tx, acct, audit.SubtypePasswordReset, audit.MinorFailure, "reset-link-withheld", addr); err != nil {
				return err
			}
			return a.queueMail(ctx, tx, "reset-link", "", link)
		}
		_, err := tx.Exec(ctx, "INSERT INTO password_reset (token_hash, account_id, nonce_hash, created, expires) VALUES (?, ?, ?, ?, ?)",
			sum(tok), acct.ID, sum(nonce), now.UnixMicro(), now.Add(ResetValid).UnixMicro())
		if err != nil {
			return err
		}
		if err := a.recordTx(ctx, tx, acct, audit.SubtypePasswordReset, audit.Success, "reset-link-sent", addr); err != nil {
			return err
		}
		return a.queueMail(ctx, tx, "reset-link", acct.ID, link)
	})
	if err != nil {
		return "", err
	}
	a.chain(ctx)
	return nonce, nil
}

// ResetAccount returns the account a link is for, if the link works in
// this browser.
func (a *Auth) ResetAccount(ctx context.Context, tok, nonce string) (*Account, error) {
	var (
		accountID string
		nonceHash []byte
		expires   int64
		used      sql.NullInt64
	)
	err := a.Store.db.ReadOne(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT account_id, nonce_hash, expires, used_at FROM password_reset WHERE token_hash = ?", sum(tok)).
			Scan(&accountID, &nonceHash, &expires, &used)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrReset
	}
	if err != nil {
		return nil, err
	}
	if used.Valid || !a.Store.now().Before(time.UnixMicro(expires)) || nonce == "" || string(sum(nonce)) != string(nonceHash) {
		return nil, ErrReset
	}
	return a.Store.AccountByID(ctx, accountID)
}

// FinishReset checks the second factor (an authenticator code or a
// recovery code: never an emailed code, which would let the mailbox alone
// take the account), then hashes the new password (only now, so a wrong
// code costs no argon2 work), spends the link and sets the hash.
func (a *Auth) FinishReset(ctx context.Context, tok, nonce, code string, hash func() (string, error), addr string) (*Account, error) {
	acct, err := a.ResetAccount(ctx, tok, nonce)
	if err != nil {
		return nil, err
	}
	if _, err := a.secondFactor(ctx, acct, code, addr, "", false); err != nil {
		return nil, err
	}
	newHash, err := hash()
	if err != nil {
		return nil, err
	}
	now := a.Store.now().UnixMicro()
	err = a.Store.db.Write(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, "UPDATE password_reset SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires > ?", now, sum(tok), now)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrReset
		}
		if _, err = tx.Exec(ctx, "UPDATE account SET password_hash = ? WHERE id = ?", newHash, acct.ID); err != nil {
			return err
		}
		if err := a.recordTx(ctx, tx, acct, audit.SubtypePasswordReset, audit.Success, "password-reset", addr); err != nil {
			return err
		}
		return a.noticeTx(ctx, tx, acct, "password-changed")
	})
	if err != nil {
		return nil, err
	}
	a.chain(ctx)
	return acct, nil
}
