package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"math/big"
	"strings"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/sqldb"
)

// Emailed codes: six digits, valid EmailCodeValid, single use; at most
// EmailCodesPerWindow codes are sent per account per window.
const (
	EmailCodeValid      = 10 * time.Minute
	EmailCodesPerWindow = 3
)

func emailCodeHash(accountID, code string) []byte {
	h := sha256.Sum256([]byte("carefront-email-code:" + accountID + ":" + strings.TrimSpace(code)))
	return h[:]
}

// ErrTooManyEmailCodes means the account asked for too many codes lately.
var ErrTooManyEmailCodes = apperr.New(apperr.RateLimited, "too many codes were sent; wait a few minutes, or use your authenticator app or a recovery code")

// NewEmailCode makes a code for the account, to be emailed; older codes
// stop working.
func (s *Store) NewEmailCode(ctx context.Context, accountID string) (code string, err error) {
	err = s.db.Write(ctx, func(tx *sqldb.Tx) error {
		code, err = s.newEmailCode(ctx, tx, accountID)
		return err
	})
	return code, err
}

func (s *Store) newEmailCode(ctx context.Context, tx *sqldb.Tx, accountID string) (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", err
	}
	code := fmt.Sprintf("%06d", n.Int64())
	now := s.now()
	var recent int
	if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM email_code WHERE account_id = ? AND created > ?",
		accountID, now.Add(-EmailCodeValid).UnixMicro()).Scan(&recent); err != nil {
		return "", err
	}
	if recent >= EmailCodesPerWindow {
		return "", ErrTooManyEmailCodes
	}
	// Only the newest code works: an older one in a forwarded or
	// intercepted mail is worth nothing once a new one was asked for.
	if _, err := tx.Exec(ctx, "UPDATE email_code SET used_at = ? WHERE account_id = ? AND used_at IS NULL", now.UnixMicro(), accountID); err != nil {
		return "", err
	}
	_, err = tx.Exec(ctx, "INSERT INTO email_code (account_id, code_hash, created, expires) VALUES (?, ?, ?, ?)",
		accountID, emailCodeHash(accountID, code), now.UnixMicro(), now.Add(EmailCodeValid).UnixMicro())
	return code, err
}

// UseEmailCode spends a code if it is the account's, unused and fresh.
func (s *Store) UseEmailCode(ctx context.Context, accountID, code string) (bool, error) {
	now := s.now().UnixMicro()
	return s.spend(ctx, "UPDATE email_code SET used_at = ? WHERE account_id = ? AND code_hash = ? AND used_at IS NULL AND expires > ?",
		now, accountID, emailCodeHash(accountID, code), now)
}
