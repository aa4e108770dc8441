package identity_test

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"carefront/internal/identity"
	"carefront/internal/notify"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

func TestEmailChange(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		auth, clock, acct := passkeyAuth(t, db)
		outbox := withMail(t, db, auth)
		ctx := context.Background()
		other := &identity.Account{Kind: identity.Person, Email: "walter@example.com"}
		auth.Store.CreateAccount(ctx, other)

		for _, bad := range []string{"not an address", "maria.ortega@example.com"} {
			if err := auth.StartEmailChange(ctx, acct, bad, "", ""); err == nil {
				t.Errorf("%q accepted", bad)
			}
		}
		if err := auth.StartEmailChange(ctx, acct, "Maria.New@Example.org", "", ""); err != nil {
			t.Fatal(err)
		}
		msgs := settle(t, db, outbox)
		if len(msgs) != 1 || msgs[0].To != "maria.new@example.org" {
			t.Fatalf("the code goes to the new address: %v", msgs)
		}
		code := regexp.MustCompile(`\b\d{6}\b`).FindString(msgs[0].Text)
		if p, _ := auth.Store.PendingEmail(ctx, acct.ID); p != "maria.new@example.org" {
			t.Errorf("pending: %q", p)
		}
		// Wrong codes count; the fifth ends the change.
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		for i := range identity.EmailChangeAttempts {
			if _, err := auth.ConfirmEmailChange(ctx, acct, wrong, "", ""); !errors.Is(err, identity.ErrEmailChange) {
				t.Fatalf("wrong code %d: %v", i, err)
			}
		}
		if _, err := auth.ConfirmEmailChange(ctx, acct, code, "", ""); !errors.Is(err, identity.ErrEmailChange) {
			t.Fatalf("the right code after five wrong ones: %v", err)
		}
		if a, _ := auth.Store.AccountByID(ctx, acct.ID); a.Email != "maria.ortega@example.com" {
			t.Fatalf("the address changed anyway: %s", a.Email)
		}
		// Again, and late: expired.
		auth.StartEmailChange(ctx, acct, "maria.new@example.org", "", "")
		code = regexp.MustCompile(`\b\d{6}\b`).FindString(settle(t, db, outbox)[0].Text)
		clock.Add(identity.EmailChangeValid + time.Second)
		if _, err := auth.ConfirmEmailChange(ctx, acct, code, "", ""); !errors.Is(err, identity.ErrEmailChange) {
			t.Fatalf("an expired code: %v", err)
		}
		// Again, in time: changed, and the old address is told.
		auth.StartEmailChange(ctx, acct, "maria.new@example.org", "", "")
		code = regexp.MustCompile(`\b\d{6}\b`).FindString(settle(t, db, outbox)[0].Text)
		got, err := auth.ConfirmEmailChange(ctx, acct, code, "", "")
		if err != nil || got != "maria.new@example.org" {
			t.Fatalf("confirm: %q %v", got, err)
		}
		if a, _ := auth.Store.AccountByEmail(ctx, "maria.new@example.org"); a == nil || a.ID != acct.ID {
			t.Error("the account is not found by its new address")
		}
		if m := settle(t, db, outbox)[0]; m.To != "maria.ortega@example.com" || !strings.Contains(m.Subject, "email address") {
			t.Errorf("the old address was not told: %s %q", m.To, m.Subject)
		}
		if _, err := auth.ConfirmEmailChange(ctx, acct, code, "", ""); !errors.Is(err, identity.ErrEmailChange) {
			t.Errorf("a code used twice: %v", err)
		}
		reasons := auditReasons(t, db)
		if !slices.Contains(reasons, "email-changed") || !slices.Contains(reasons, "email-change-refused") {
			t.Errorf("audit: %v", reasons)
		}
	})
}

// A change to an address another account uses is answered as any other:
// the asker learns nothing, no code is sent to anyone who could use it,
// and the owner of the address is told someone tried.
func TestEmailChangeToATakenAddressTellsNothing(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		auth, _, acct := passkeyAuth(t, db)
		outbox := withMail(t, db, auth)
		ctx := context.Background()
		owner := &identity.Account{Kind: identity.Person, Email: "walter@example.com"}
		auth.Store.CreateAccount(ctx, owner)
		if err := auth.StartEmailChange(ctx, acct, "WALTER@example.com", "", ""); err != nil {
			t.Fatalf("a taken address = %v, want the answer a free one gets", err)
		}
		if p, _ := auth.Store.PendingEmail(ctx, acct.ID); p != "walter@example.com" {
			t.Errorf("pending = %q, want it recorded like any change", p)
		}
		msgs := settle(t, db, outbox)
		if len(msgs) != 1 || msgs[0].To != "walter@example.com" || !strings.Contains(msgs[0].Subject, "Someone tried to use your email address") {
			t.Fatalf("mail = %+v, want one notice to the owner", msgs)
		}
		if regexp.MustCompile(`\b\d{6}\b`).MatchString(msgs[0].Text) || strings.Contains(msgs[0].Text, "maria") {
			t.Errorf("the owner's notice carries a code or the asker: %q", msgs[0].Text)
		}
		for _, code := range []string{"000000", "123456"} {
			if _, err := auth.ConfirmEmailChange(ctx, acct, code, "", ""); !errors.Is(err, identity.ErrEmailChange) {
				t.Errorf("confirming with %s: %v", code, err)
			}
		}
		if a, _ := auth.Store.AccountByID(ctx, acct.ID); a.Email != "maria.ortega@example.com" {
			t.Errorf("the address changed: %s", a.Email)
		}
	})
}

// Asking for new codes does not give new tries: ten a day in all, so the
// 6-digit code cannot be guessed by asking again and again.
func TestEmailVerificationTriesCarryOverNewCodes(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		auth, clock, _ := passkeyAuth(t, db)
		withMail(t, db, auth)
		ctx := context.Background()
		acct := &identity.Account{Kind: identity.Person, Email: "new@example.com"}
		auth.Store.CreateAccount(ctx, acct)
		for i := 0; i < identity.EmailVerifyAttempts; i++ {
			if i%3 == 0 {
				if err := auth.StartEmailVerification(ctx, acct); err != nil {
					t.Fatal(err)
				}
			}
			auth.ConfirmEmailVerification(ctx, acct, "999999x", "", "")
		}
		if err := auth.StartEmailVerification(ctx, acct); err != nil {
			t.Fatal(err)
		}
		code := regexp.MustCompile(`\b\d{6}\b`).FindString(settle(t, db, auth.Mail.(*notify.Outbox))[0].Text)
		if err := auth.ConfirmEmailVerification(ctx, acct, code, "", ""); !errors.Is(err, identity.ErrEmailVerify) {
			t.Fatalf("the right code after %d tries today: %v, want refused", identity.EmailVerifyAttempts, err)
		}
		clock.Add(25 * time.Hour)
		if err := auth.StartEmailVerification(ctx, acct); err != nil {
			t.Fatal(err)
		}
		code = regexp.MustCompile(`\b\d{6}\b`).FindString(settle(t, db, auth.Mail.(*notify.Outbox))[0].Text)
		if err := auth.ConfirmEmailVerification(ctx, acct, code, "", ""); err != nil {
			t.Fatalf("a new code the next day: %v", err)
		}
	})
}

// Concurrent wrong codes compare no more than EmailChangeAttempts codes:
// each try is taken before the code is compared.
func TestEmailChangeTriesAreReservedBeforeComparing(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		auth, _, acct := passkeyAuth(t, db)
		outbox := withMail(t, db, auth)
		ctx := context.Background()
		if err := auth.StartEmailChange(ctx, acct, "maria.new@example.org", "", ""); err != nil {
			t.Fatal(err)
		}
		code := regexp.MustCompile(`\b\d{6}\b`).FindString(settle(t, db, outbox)[0].Text)
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				auth.ConfirmEmailChange(ctx, acct, wrong, "", "")
			}()
		}
		wg.Wait()
		var attempts int
		db.Read(ctx, func(tx *sqldb.Tx) error {
			return tx.QueryRow(ctx, "SELECT attempts FROM email_change WHERE account_id = ?", acct.ID).Scan(&attempts)
		})
		if attempts != identity.EmailChangeAttempts {
			t.Errorf("attempts = %d after 20 concurrent tries, want %d", attempts, identity.EmailChangeAttempts)
		}
		if _, err := auth.ConfirmEmailChange(ctx, acct, code, "", ""); !errors.Is(err, identity.ErrEmailChange) {
			t.Errorf("the right code after the burst: %v, want refused", err)
		}
	})
}
