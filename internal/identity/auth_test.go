package identity_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/identity"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

var cheap = identity.Params{Memory: 8 * 1024, Time: 1, Threads: 1}

func auditOutcomes(t *testing.T, db *sqldb.DB) []string {
	t.Helper()
	var out []string
	db.Read(context.Background(), func(tx *sqldb.Tx) error {
		rows, err := tx.Query(context.Background(), "SELECT outcome FROM audit_event ORDER BY seq")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var o string
			rows.Scan(&o)
			out = append(out, o)
		}
		return nil
	})
	return out
}

func TestSignInAnswersAlikeForUnknownAccounts(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s, c, a := setup(t, db)
		ctx := context.Background()
		h := identity.NewHasher(cheap, 4)
		hash, _ := h.Hash(ctx, "correct horse battery")
		s.SetPasswordHash(ctx, a.ID, hash)
		aw := auditWriter(t, db)
		auth := &identity.Auth{Store: s, Hasher: h, Audit: aw}

		got, err := auth.Password(ctx, "MARIA.ORTEGA@example.com", "correct horse battery", "192.0.2.1")
		if err != nil || got.ID != a.ID {
			t.Fatalf("right password: %v", err)
		}
		_, errWrong := auth.Password(ctx, "maria.ortega@example.com", "wrong horse battery", "192.0.2.1")
		_, errUnknown := auth.Password(ctx, "nobody@example.com", "wrong horse battery", "192.0.2.1")
		if errWrong != identity.ErrSignIn || errUnknown != identity.ErrSignIn {
			t.Fatalf("wrong password: %v; unknown account: %v; want the same ErrSignIn", errWrong, errUnknown)
		}
		// Both get throttled after the same number of failures.
		for range identity.FreeFailures - 1 {
			auth.Password(ctx, "maria.ortega@example.com", "wrong", "192.0.2.1")
			auth.Password(ctx, "nobody@example.com", "wrong", "192.0.2.1")
		}
		// Case variants and spaces are the same address, known or not (an
		// unknown address's failures were once counted as typed, so a
		// variant told unknown from known: 401 against 429).
		_, e1 := auth.Password(ctx, " Maria.ORTEGA@example.com", "correct horse battery", "192.0.2.1")
		_, e2 := auth.Password(ctx, "NoBody@Example.com ", "correct horse battery", "192.0.2.1")
		var t1, t2 *identity.ThrottledError
		if !errors.As(e1, &t1) || !errors.As(e2, &t2) || t1.Wait != t2.Wait || apperr.CodeOf(e1) != apperr.RateLimited {
			t.Fatalf("throttling differs: %v / %v", e1, e2)
		}
		c.Add(time.Second)
		if _, err := auth.Password(ctx, "maria.ortega@example.com", "correct horse battery", "192.0.2.1"); err != nil {
			t.Fatalf("after waiting: %v", err)
		}
		// Every attempt was audited: 1 success, 3 failures and 1 throttle
		// for each address, then the success.
		outs := auditOutcomes(t, db)
		if len(outs) != 1+2+2*(identity.FreeFailures-1)+2+1 {
			t.Errorf("audit records: %v", outs)
		}
	})
}

func TestSecondFactor(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s, c, a := setup(t, db)
		ctx := context.Background()
		aw := auditWriter(t, db)
		auth := &identity.Auth{Store: s, Hasher: identity.NewHasher(cheap, 4), Audit: aw}
		en, _ := s.BeginTOTP(ctx, a.ID, "carefront", a.Email)
		s.ConfirmTOTP(ctx, a.ID, code(t, en.Secret, c.Now()))
		codes, _ := s.NewRecoveryCodes(ctx, a.ID)
		c.Add(30 * time.Second)
		if m, err := auth.SecondFactor(ctx, a, code(t, en.Secret, c.Now()), "", ""); err != nil || m != "totp" {
			t.Fatalf("totp: %q %v", m, err)
		}
		if _, err := auth.SecondFactor(ctx, a, code(t, en.Secret, c.Now()), "", ""); err != identity.ErrBadCode {
			t.Errorf("replayed totp: %v", err)
		}
		if m, err := auth.SecondFactor(ctx, a, codes[0], "", ""); err != nil || m != "recovery-code" {
			t.Fatalf("recovery code: %q %v", m, err)
		}
		if _, err := auth.SecondFactor(ctx, a, codes[0], "", ""); err != identity.ErrBadCode {
			t.Errorf("recovery code used twice: %v", err)
		}
	})
}

func TestEmailCodes(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s, c, a := setup(t, db)
		ctx := context.Background()
		aw := auditWriter(t, db)
		auth := &identity.Auth{Store: s, Hasher: identity.NewHasher(cheap, 4), Audit: aw}
		code, err := s.NewEmailCode(ctx, a.ID)
		if err != nil || len(code) != 6 {
			t.Fatalf("code %q: %v", code, err)
		}
		if m, err := auth.SecondFactor(ctx, a, code, "", ""); err != nil || m != "email-code" {
			t.Fatalf("email code: %q %v", m, err)
		}
		if _, err := auth.SecondFactor(ctx, a, code, "", ""); err != identity.ErrBadCode {
			t.Errorf("email code used twice: %v", err)
		}
		// An emailed code never passes a step-up, and is not spent trying.
		stepCode, _ := s.NewEmailCode(ctx, a.ID)
		if _, err := auth.StepUp(ctx, a, stepCode, "", ""); err != identity.ErrBadCode {
			t.Errorf("step-up with an emailed code: %v, want ErrBadCode", err)
		}
		c.Add(2 * time.Second)
		if m, err := auth.SecondFactor(ctx, a, stepCode, "", ""); err != nil || m != "email-code" {
			t.Errorf("the code after a refused step-up: %q %v", m, err)
		}
		c.Add(identity.EmailCodeValid)
		// A new code makes the older, unused one worthless.
		older, _ := s.NewEmailCode(ctx, a.ID)
		newer, _ := s.NewEmailCode(ctx, a.ID)
		if ok, _ := s.UseEmailCode(ctx, a.ID, older); ok {
			t.Error("an email code still worked after a newer one was sent")
		}
		if ok, _ := s.UseEmailCode(ctx, a.ID, newer); !ok {
			t.Error("the newest email code did not work")
		}
		c.Add(identity.EmailCodeValid)
		late, _ := s.NewEmailCode(ctx, a.ID)
		c.Add(identity.EmailCodeValid)
		if ok, _ := s.UseEmailCode(ctx, a.ID, late); ok {
			t.Error("an expired email code worked")
		}
		for range identity.EmailCodesPerWindow {
			if _, err := s.NewEmailCode(ctx, a.ID); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.NewEmailCode(ctx, a.ID); err != identity.ErrTooManyEmailCodes {
			t.Errorf("codes beyond the limit: %v", err)
		}
	})
}

func auditWriter(t *testing.T, db *sqldb.DB) *audit.Writer {
	t.Helper()
	sig, _ := audit.NewSigner(make([]byte, 32))
	aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test", CheckpointEvery: 100})
	t.Cleanup(func() { aw.Close(context.Background()) })
	return aw
}

// An account change and its audit record commit together: when the record
// cannot be written, the change does not happen (the password was changed
// first and audited after, so a failed record left it changed, unaudited).
func TestAccountChangeAndItsRecordCommitTogether(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s, _, a := setup(t, db)
		ctx := context.Background()
		h := identity.NewHasher(cheap, 4)
		old, _ := h.Hash(ctx, "correct horse battery")
		s.SetPasswordHash(ctx, a.ID, old)
		a, _ = s.AccountByID(ctx, a.ID)
		auth := &identity.Auth{Store: s, Hasher: h, Audit: auditWriter(t, db)}
		newHash := func() (string, error) { return h.Hash(ctx, "a brand new passphrase") }
		// An address the audit writer refuses: the record cannot be made.
		if err := auth.ChangePassword(ctx, a, "correct horse battery", newHash, "not an address", ""); err == nil {
			t.Fatal("ChangePassword with an unrecordable request = nil error")
		}
		if got, _ := s.AccountByID(ctx, a.ID); got.PasswordHash != old {
			t.Error("the password changed although its audit record could not be written")
		}
		if err := auth.ChangePassword(ctx, a, "correct horse battery", newHash, "192.0.2.1", ""); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.AccountByID(ctx, a.ID); got.PasswordHash == old {
			t.Error("the password did not change")
		}
		if reasons := auditReasons(t, db); !slices.Contains(reasons, "password-changed") {
			t.Errorf("audit: %v", reasons)
		}
	})
}
