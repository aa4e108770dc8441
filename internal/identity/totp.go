package identity

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"image/png"
	"net/url"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
)

// Authenticator apps (TOTP, RFC 6238): SHA-1, six digits, 30-second steps,
// one step of clock skew either way. Every code is accepted once: a step
// at or before the last accepted one is refused.
const (
	totpPeriod = 30
	totpSkew   = 1
)

func totpBinding(accountID string) seal.Binding {
	return seal.Binding{Table: "account_totp", Column: "seed", Row: accountID}
}

// TOTPEnrolment is what the person needs to add carefront to their app.
type TOTPEnrolment struct {
	Secret string // base32, for typing in by hand
	URL    string // otpauth:// URL, for the QR code
}

// BeginTOTP makes a new secret for the account, replacing any pending
// (not yet confirmed) one. An active authenticator stays active until the
// new one is confirmed.
func (s *Store) BeginTOTP(ctx context.Context, accountID, issuer, label string) (*TOTPEnrolment, error) {
	secret := make([]byte, 20)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	sealed, err := s.keys.Seal(secret, totpBinding(accountID))
	if err != nil {
		return nil, err
	}
	err = s.db.Write(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM account_totp WHERE account_id = ? AND NOT active", accountID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO account_totp (account_id, seed, active, last_step, created) VALUES (?, ?, ?, 0, ?)",
			accountID, sealed, false, s.now().UnixMicro())
		if err != nil {
			return fmt.Errorf("begin authenticator: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return enrolment(secret, issuer, label), nil
}

// ErrBadCode is a wrong, expired or already used code.
var ErrBadCode = apperr.New(apperr.Invalid, "that code is not right, or was used already; wait for the next code and try again")

// ConfirmTOTP activates the pending authenticator if code is right.
func (s *Store) ConfirmTOTP(ctx context.Context, accountID, code string) error {
	now := s.now()
	return s.db.Write(ctx, func(tx *sqldb.Tx) error {
		var sealed []byte
		err := tx.QueryRow(ctx, "SELECT seed FROM account_totp WHERE account_id = ? AND NOT active", accountID).Scan(&sealed)
		if errors.Is(err, sql.ErrNoRows) {
			return apperr.New(apperr.Invalid, "start adding the authenticator app again")
		}
		if err != nil {
			return err
		}
		secret, err := s.keys.Open(sealed, totpBinding(accountID))
		if err != nil {
			return err
		}
		step, ok := matchTOTP(secret, code, now, 0)
		if !ok {
			return ErrBadCode
		}
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{"DELETE FROM account_totp WHERE account_id = ? AND active", []any{accountID}},
			{"UPDATE account_totp SET active = ?, last_step = ?, created = ? WHERE account_id = ? AND NOT active", []any{true, step, now.UnixMicro(), accountID}},
		} {
			if _, err := tx.Exec(ctx, q.sql, q.args...); err != nil {
				return err
			}
		}
		return nil
	})
}

// VerifyTOTP accepts a code from the account's active authenticator once.
// Two sign-ins racing with the same code cannot both pass: the last step
// moves forward only if it has not moved already.
func (s *Store) VerifyTOTP(ctx context.Context, accountID, code string) error {
	now := s.now()
	return s.db.Write(ctx, func(tx *sqldb.Tx) error {
		var (
			sealed []byte
			last   int64
		)
		err := tx.QueryRow(ctx, "SELECT seed, last_step FROM account_totp WHERE account_id = ? AND active", accountID).Scan(&sealed, &last)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrBadCode
		}
		if err != nil {
			return err
		}
		secret, err := s.keys.Open(sealed, totpBinding(accountID))
		if err != nil {
			return err
		}
		step, ok := matchTOTP(secret, code, now, last)
		if !ok {
			return ErrBadCode
		}
		res, err := tx.Exec(ctx, "UPDATE account_totp SET last_step = ? WHERE account_id = ? AND last_step < ?", step, accountID, step)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrBadCode
		}
		return nil
	})
}

// RemoveTOTP deletes the account's authenticator app, active and pending,
// unless it is the account's last second factor.
func (s *Store) RemoveTOTP(ctx context.Context, accountID string) error {
	return s.db.Write(ctx, func(tx *sqldb.Tx) error {
		var active int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM account_totp WHERE account_id = ? AND active", accountID).Scan(&active); err != nil {
			return err
		}
		if active > 0 {
			n, err := factorCount(ctx, tx, accountID)
			if err != nil {
				return err
			}
			if n <= 1 {
				return ErrLastFactor
			}
		}
		_, err := tx.Exec(ctx, "DELETE FROM account_totp WHERE account_id = ?", accountID)
		return err
	})
}

// AddAuthenticatorApp activates acct's pending authenticator app if code
// is right (ErrBadCode otherwise), audits it and tells the owner, as
// adding a passkey does.
func (a *Auth) AddAuthenticatorApp(ctx context.Context, acct *Account, code, addr, sessionHex string) error {
	if err := a.Store.ConfirmTOTP(ctx, acct.ID, code); err != nil {
		return err
	}
	if err := a.record(ctx, acct, audit.SubtypeAccountChange, audit.Success, "totp-added", addr, sessionHex); err != nil {
		return err
	}
	a.Notice(ctx, acct, "factor-added")
	return nil
}

// RemoveAuthenticatorApp removes acct's authenticator app (never its last
// second factor), audits it and tells the owner.
func (a *Auth) RemoveAuthenticatorApp(ctx context.Context, acct *Account, addr, sessionHex string) error {
	if err := a.Store.RemoveTOTP(ctx, acct.ID); err != nil {
		return err
	}
	if err := a.record(ctx, acct, audit.SubtypeAccountChange, audit.Success, "totp-removed", addr, sessionHex); err != nil {
		return err
	}
	a.Notice(ctx, acct, "factor-removed")
	return nil
}

// matchTOTP finds the step within the skew window whose code is code and
// which is later than after.
func matchTOTP(secret []byte, code string, now time.Time, after int64) (int64, bool) {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if len(code) != 6 {
		return 0, false
	}
	b32secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
	cur := now.Unix() / totpPeriod
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		step := cur + d
		if step <= after {
			continue
		}
		want, err := totp.GenerateCodeCustom(b32secret, time.Unix(step*totpPeriod, 0), totp.ValidateOpts{
			Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step, true
		}
	}
	return 0, false
}

// PendingTOTP returns the enrolment being added, if it was begun within
// maxAge, so a form shown again after a wrong code keeps the same QR code.
func (s *Store) PendingTOTP(ctx context.Context, accountID, issuer, label string, maxAge time.Duration) (*TOTPEnrolment, error) {
	var (
		sealed  []byte
		created int64
	)
	err := s.db.ReadOne(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT seed, created FROM account_totp WHERE account_id = ? AND NOT active", accountID).Scan(&sealed, &created)
	})
	if errors.Is(err, sql.ErrNoRows) || (err == nil && s.now().Sub(time.UnixMicro(created)) > maxAge) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	secret, err := s.keys.Open(sealed, totpBinding(accountID))
	if err != nil {
		return nil, err
	}
	return enrolment(secret, issuer, label), nil
}

func enrolment(secret []byte, issuer, label string) *TOTPEnrolment {
	b32secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
	v := url.Values{"secret": {b32secret}, "issuer": {issuer}, "algorithm": {"SHA1"}, "digits": {"6"}, "period": {"30"}}
	u := url.URL{Scheme: "otpauth", Host: "totp", Path: "/" + issuer + ":" + label, RawQuery: v.Encode()}
	return &TOTPEnrolment{Secret: b32secret, URL: u.String()}
}

// QRCode renders the enrolment URL as a PNG QR code.
func (e *TOTPEnrolment) QRCode(size int) ([]byte, error) {
	k, err := otp.NewKeyFromURL(e.URL)
	if err != nil {
		return nil, err
	}
	img, err := k.Image(size, size)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// SetTOTPSecret installs an active authenticator with a known secret
// (base32). It exists for the demo accounts, whose codes the README lets
// anyone generate; real accounts always enrol through BeginTOTP.
func (s *Store) SetTOTPSecret(ctx context.Context, accountID, b32secret string) error {
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(b32secret)
	if err != nil {
		return err
	}
	sealed, err := s.keys.Seal(secret, totpBinding(accountID))
	if err != nil {
		return err
	}
	return s.db.Write(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM account_totp WHERE account_id = ?", accountID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO account_totp (account_id, seed, active, last_step, created) VALUES (?, ?, ?, 0, ?)",
			accountID, sealed, true, s.now().UnixMicro())
		return err
	})
}
