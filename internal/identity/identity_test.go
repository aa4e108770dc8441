package identity_test

import (
	"context"
	"encoding/base32"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"carefront/internal/apperr"
	"carefront/internal/identity"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

func setup(t *testing.T, db *sqldb.DB) (*identity.Store, *sqldbtest.Clock, *identity.Account) {
	t.Helper()
	c := sqldbtest.UseClock(db)
	k, err := seal.Generate()
	if err != nil {
		t.Fatal(err)
	}
	s := identity.NewStore(db, k)
	a := &identity.Account{Kind: identity.Person, Email: " Maria.Ortega@Example.com ", PatientID: "demo-maria"}
	if err := s.CreateAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	return s, c, a
}

func TestAccounts(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s, _, a := setup(t, db)
		ctx := context.Background()
		got, err := s.AccountByEmail(ctx, "maria.ortega@example.com")
		if err != nil || got.ID != a.ID || got.Email != "maria.ortega@example.com" || got.PatientID != "demo-maria" {
			t.Fatalf("AccountByEmail: %+v %v", got, err)
		}
		if err := s.CreateAccount(ctx, &identity.Account{Kind: identity.Person, Email: "MARIA.ORTEGA@example.com"}); apperr.CodeOf(err) != apperr.Conflict {
			t.Errorf("duplicate email: %v", err)
		}
		for _, bad := range []string{"", "maria", "@example.com", "maria@", "a b@example.com", "maria@localhost"} {
			if err := s.CreateAccount(ctx, &identity.Account{Kind: identity.Person, Email: bad}); apperr.CodeOf(err) != apperr.Invalid {
				t.Errorf("email %q: %v", bad, err)
			}
		}
		if _, err := s.AccountByEmail(ctx, "nobody@example.com"); err != identity.ErrNoAccount {
			t.Errorf("unknown: %v", err)
		}
	})
}

func TestLockoutIsProgressiveThenLocks(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s, c, a := setup(t, db)
		ctx := context.Background()
		// Counted under the normalized address: a case variant or stray
		// spaces are the same address.
		check := func() identity.Throttle {
			th, err := s.CheckThrottle(ctx, "  "+strings.ToUpper(a.Email))
			if err != nil {
				t.Fatal(err)
			}
			return th
		}
		for i := 1; i <= identity.FreeFailures; i++ {
			if th := check(); th.Wait != 0 {
				t.Fatalf("failure %d: throttled %v before the free failures are used", i, th)
			}
			s.RecordFailure(ctx, a.Email)
		}
		// Now each attempt waits: 1 s, then 2 s, ...
		if th := check(); th.Wait != time.Second || th.Locked {
			t.Fatalf("after %d failures: %+v, want a 1s wait", identity.FreeFailures, th)
		}
		c.Add(time.Second)
		if th := check(); th.Wait != 0 {
			t.Fatalf("after waiting: %+v", th)
		}
		s.RecordFailure(ctx, a.Email)
		if th := check(); th.Wait != 2*time.Second {
			t.Fatalf("next: %+v, want 2s", th)
		}
		var locked bool
		for i := identity.FreeFailures + 2; i <= identity.LockAfter; i++ {
			c.Add(time.Minute)
			var err error
			if locked, err = s.RecordFailure(ctx, a.Email); err != nil {
				t.Fatal(err)
			}
		}
		if !locked {
			t.Fatal("not locked after LockAfter failures")
		}
		if th := check(); !th.Locked || th.Wait != identity.LockFor {
			t.Fatalf("locked: %+v", th)
		}
		c.Add(identity.LockFor)
		if th := check(); th.Locked || th.Wait != 0 {
			t.Fatalf("after the lock: %+v", th)
		}
		s.RecordSuccess(ctx, a.Email)
		if th := check(); th.Wait != 0 || th.Locked {
			t.Errorf("after success: %+v", th)
		}
	})
}

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAuthenticatorApp(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s, c, a := setup(t, db)
		ctx := context.Background()
		en, err := s.BeginTOTP(ctx, a.ID, "carefront", a.Email)
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(en.URL)
		if err != nil || u.Scheme != "otpauth" || u.Query().Get("secret") != en.Secret || u.Query().Get("issuer") != "carefront" {
			t.Errorf("enrolment URL %s", en.URL)
		}
		if _, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(en.Secret); err != nil {
			t.Errorf("secret is not base32: %v", err)
		}
		if f, _ := s.Factors(ctx, a.ID); f.AuthenticatorApp {
			t.Fatal("active before confirmation")
		}
		if err := s.ConfirmTOTP(ctx, a.ID, "000000"); err != identity.ErrBadCode {
			t.Fatalf("wrong confirmation code: %v", err)
		}
		if err := s.ConfirmTOTP(ctx, a.ID, code(t, en.Secret, c.Now())); err != nil {
			t.Fatal(err)
		}
		if f, _ := s.Factors(ctx, a.ID); !f.AuthenticatorApp {
			t.Fatal("not active after confirmation")
		}
		// The code that confirmed it cannot sign in: it was used.
		if err := s.VerifyTOTP(ctx, a.ID, code(t, en.Secret, c.Now())); err != identity.ErrBadCode {
			t.Errorf("confirmation code reused: %v", err)
		}
		c.Add(30 * time.Second)
		now := code(t, en.Secret, c.Now())
		if err := s.VerifyTOTP(ctx, a.ID, now); err != nil {
			t.Fatalf("fresh code: %v", err)
		}
		if err := s.VerifyTOTP(ctx, a.ID, now); err != identity.ErrBadCode {
			t.Errorf("replayed code accepted: %v", err)
		}
		// One step of skew: the next step's code is accepted, two steps not.
		c.Add(30 * time.Second)
		if err := s.VerifyTOTP(ctx, a.ID, code(t, en.Secret, c.Now().Add(30*time.Second))); err != nil {
			t.Errorf("code one step ahead: %v", err)
		}
		if err := s.VerifyTOTP(ctx, a.ID, code(t, en.Secret, c.Now().Add(90*time.Second))); err != identity.ErrBadCode {
			t.Errorf("code three steps ahead accepted: %v", err)
		}
		// Two sign-ins racing with one code: exactly one passes.
		c.Add(5 * time.Minute)
		racing := code(t, en.Secret, c.Now())
		var wg sync.WaitGroup
		var mu sync.Mutex
		passed := 0
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if s.VerifyTOTP(ctx, a.ID, racing) == nil {
					mu.Lock()
					passed++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if passed != 1 {
			t.Errorf("%d racing sign-ins passed with one code, want 1", passed)
		}
		// The seed is sealed: the stored bytes are not the secret.
		var stored []byte
		db.Read(ctx, func(tx *sqldb.Tx) error {
			return tx.QueryRow(ctx, "SELECT seed FROM account_totp WHERE account_id = ?", a.ID).Scan(&stored)
		})
		raw, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(en.Secret)
		if len(stored) == 0 || strings.Contains(string(stored), string(raw)) {
			t.Error("the authenticator seed is stored in the clear")
		}
	})
}

func TestRecoveryCodes(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s, _, a := setup(t, db)
		ctx := context.Background()
		codes, err := s.NewRecoveryCodes(ctx, a.ID)
		if err != nil || len(codes) != identity.RecoveryCodes {
			t.Fatalf("%v %v", codes, err)
		}
		seen := map[string]bool{}
		for _, c := range codes {
			if len(c) != 19 || seen[c] {
				t.Errorf("code %q malformed or repeated", c)
			}
			seen[c] = true
		}
		if ok, _ := s.UseRecoveryCode(ctx, a.ID, strings.ToLower(strings.ReplaceAll(codes[3], "-", " "))); !ok {
			t.Error("a code typed in lower case with spaces was refused")
		}
		if ok, _ := s.UseRecoveryCode(ctx, a.ID, codes[3]); ok {
			t.Error("a code was accepted twice")
		}
		other := &identity.Account{Kind: identity.Person, Email: "other@example.com"}
		s.CreateAccount(ctx, other)
		if ok, _ := s.UseRecoveryCode(ctx, other.ID, codes[4]); ok {
			t.Error("another account's code was accepted")
		}
		if f, _ := s.Factors(ctx, a.ID); f.RecoveryCodes != 9 {
			t.Errorf("left = %d, want 9", f.RecoveryCodes)
		}
		// New codes replace the old ones.
		s.NewRecoveryCodes(ctx, a.ID)
		if ok, _ := s.UseRecoveryCode(ctx, a.ID, codes[5]); ok {
			t.Error("an old code still works after new ones were made")
		}
	})
}

func TestActivation(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s, c, _ := setup(t, db)
		ctx := context.Background()
		lookups := 0
		lookup := func(_ context.Context, id string) (identity.Demographics, error) {
			lookups++
			if id != "demo-walter" {
				t.Fatalf("looked up %s", id)
			}
			return identity.Demographics{BirthDate: "1941-08-12", FamilyName: "Brooks-Demo"}, nil
		}
		code, expires, err := s.Invite(ctx, "demo-walter")
		if err != nil || len(code) != 19 || !expires.Equal(c.Now().Add(identity.ActivationValid)) {
			t.Fatalf("Invite: %q %v %v", code, expires, err)
		}
		right := identity.Demographics{BirthDate: "1941-08-12", FamilyName: "brooks demo"}
		// More invitations for the record, made before it has an account.
		code2, _, _ := s.Invite(ctx, "demo-walter")
		code3, _, _ := s.Invite(ctx, "demo-walter")
		// Wrong date of birth, wrong name, unknown code: one answer for all.
		for _, tc := range []struct {
			code string
			who  identity.Demographics
		}{
			{code, identity.Demographics{BirthDate: "1941-08-13", FamilyName: "Brooks-Demo"}},
			{code, identity.Demographics{BirthDate: "1941-08-12", FamilyName: "Brooks"}},
			{"AAAA-BBBB-CCCC-DDDD", right},
		} {
			if _, err := s.CheckActivation(ctx, tc.code, tc.who, lookup); err != identity.ErrActivation {
				t.Errorf("CheckActivation(%+v) = %v, want ErrActivation", tc.who, err)
			}
		}
		// Case, accents, spaces and hyphens do not matter; the code is
		// accepted in lower case too.
		pid, err := s.CheckActivation(ctx, strings.ToLower(code), identity.Demographics{BirthDate: "1941-08-12", FamilyName: " BRÓOKS demo "}, lookup)
		if err != nil || pid != "demo-walter" {
			t.Fatalf("right details: %q %v", pid, err)
		}
		a := &identity.Account{Email: "walter@example.com", PasswordHash: "$argon2id$x"}
		if err := s.Activate(ctx, code, pid, a); err != nil {
			t.Fatal(err)
		}
		got, err := s.AccountByEmail(ctx, "walter@example.com")
		if err != nil || got.PatientID != "demo-walter" || got.Kind != identity.Person {
			t.Fatalf("activated account: %+v %v", got, err)
		}
		// The code is spent.
		if _, err := s.CheckActivation(ctx, code, right, lookup); err != identity.ErrActivation {
			t.Errorf("reused code: %v", err)
		}
		if err := s.Activate(ctx, code, pid, &identity.Account{Email: "second@example.com"}); err != identity.ErrActivation {
			t.Errorf("second activation with one code: %v", err)
		}
		// Too many wrong answers burn a code; an old code expires.
		for range identity.ActivationAttempts {
			s.CheckActivation(ctx, code2, identity.Demographics{BirthDate: "2000-01-01", FamilyName: "x"}, lookup)
		}
		if _, err := s.CheckActivation(ctx, code2, right, lookup); err != identity.ErrActivation {
			t.Errorf("code after %d wrong answers: %v", identity.ActivationAttempts, err)
		}
		c.Add(identity.ActivationValid)
		if _, err := s.CheckActivation(ctx, code3, right, lookup); err != identity.ErrActivation {
			t.Errorf("expired code: %v", err)
		}
		if err := s.Activate(ctx, code3, "demo-walter", &identity.Account{Email: "late@example.com"}); err != identity.ErrActivation {
			t.Errorf("expired code activated: %v", err)
		}
	})
}

func TestStaffSetup(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s, c, _ := setup(t, db)
		ctx := context.Background()
		if _, _, _, err := s.CreateStaff(ctx, identity.NewStaff{Email: "dr@example.org", Role: "surgeon", Name: "Dr Kim"}); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("unknown role: %v", err)
		}
		a, code, expires, err := s.CreateStaff(ctx, identity.NewStaff{Email: "Dr@Example.org", Role: "clinician", Name: "Dr Kim"})
		if err != nil || a.Kind != identity.Staff || a.StaffRole != "clinician" || !expires.Equal(c.Now().Add(identity.StaffSetupValid)) {
			t.Fatalf("CreateStaff: %+v %v", a, err)
		}
		got, err := s.StaffSetupAccount(ctx, code)
		if err != nil || got.ID != a.ID || got.PasswordHash != "" {
			t.Fatalf("setup account: %+v %v", got, err)
		}
		// A staff code is no patient activation, and the other way round.
		if _, err := s.CheckActivation(ctx, code, identity.Demographics{BirthDate: "1970-01-01", FamilyName: "x"}, nil); err != identity.ErrActivation {
			t.Errorf("staff code as patient activation: %v", err)
		}
		pcode, _, _ := s.Invite(ctx, "p1")
		if _, err := s.StaffSetupAccount(ctx, pcode); err != identity.ErrActivation {
			t.Errorf("patient code as staff setup: %v", err)
		}
		if err := s.CompleteStaffSetup(ctx, code, a.ID, "$argon2id$hash"); err != nil {
			t.Fatal(err)
		}
		if err := s.CompleteStaffSetup(ctx, code, a.ID, "$argon2id$other"); err != identity.ErrActivation {
			t.Errorf("code reused: %v", err)
		}
		if got, _ := s.AccountByID(ctx, a.ID); got.PasswordHash != "$argon2id$hash" {
			t.Errorf("password hash = %q", got.PasswordHash)
		}
		_, code2, _, _ := s.CreateStaff(ctx, identity.NewStaff{Email: "late@example.org", Role: "support", Name: "Lee Late"})
		c.Add(identity.StaffSetupValid)
		if _, err := s.StaffSetupAccount(ctx, code2); err != identity.ErrActivation {
			t.Errorf("expired staff code: %v", err)
		}
	})
}

// TestClinicians: only clinicians linked to a Practitioner who finished
// their set-up are listed (the correction-deadline reminders go to them).
func TestClinicians(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s, _, _ := setup(t, db)
		ctx := context.Background()
		kim, kcode, _, _ := s.CreateStaff(ctx, identity.NewStaff{Email: "kim@example.org", Role: "clinician", Name: "Dr Kim", PractitionerID: "demo-dr-kim"})
		_, _, _, _ = s.CreateStaff(ctx, identity.NewStaff{Email: "new@example.org", Role: "clinician", Name: "Dr New", PractitionerID: "demo-dr-new"})
		lee, lcode, _, _ := s.CreateStaff(ctx, identity.NewStaff{Email: "lee@example.org", Role: "support", Name: "Lee Support"})
		ann, acode, _, _ := s.CreateStaff(ctx, identity.NewStaff{Email: "ann@example.org", Role: "clinician", Name: "Dr Ann"})
		for id, code := range map[string]string{kim.ID: kcode, lee.ID: lcode, ann.ID: acode} {
			if err := s.CompleteStaffSetup(ctx, code, id, "$argon2id$hash"); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Clinicians(ctx)
		if err != nil || len(got) != 1 || got[0] != (identity.StaffClinician{AccountID: kim.ID, PractitionerID: "demo-dr-kim"}) {
			t.Errorf("Clinicians = %+v, %v; want only Dr Kim", got, err)
		}
	})
}

// A burst of concurrent tries checks at most ActivationAttempts answers:
// each try takes one of the code's tries before comparing (it was check,
// then act, and 25 concurrent tries evaluated 19).
func TestActivationTriesAreReservedBeforeComparing(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s, _, _ := setup(t, db)
		ctx := context.Background()
		var mu sync.Mutex
		lookups := 0
		lookup := func(context.Context, string) (identity.Demographics, error) {
			mu.Lock()
			lookups++
			mu.Unlock()
			return identity.Demographics{BirthDate: "1941-08-12", FamilyName: "Brooks"}, nil
		}
		code, _, _ := s.Invite(ctx, "demo-walter")
		var wg sync.WaitGroup
		for range 25 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.CheckActivation(ctx, code, identity.Demographics{BirthDate: "1999-09-09", FamilyName: "Brooks"}, lookup)
			}()
		}
		wg.Wait()
		if lookups > identity.ActivationAttempts {
			t.Errorf("%d answers were checked, want at most %d", lookups, identity.ActivationAttempts)
		}
		if _, err := s.CheckActivation(ctx, code, identity.Demographics{BirthDate: "1941-08-12", FamilyName: "Brooks"}, lookup); err != identity.ErrActivation {
			t.Errorf("the right answer after the burst: %v, want the code burnt", err)
		}
	})
}

// A record gets one account: activating a second invitation for a patient
// who has an account is refused with a plain message.
func TestOneAccountPerPatient(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s, _, _ := setup(t, db)
		ctx := context.Background()
		lookup := func(context.Context, string) (identity.Demographics, error) {
			return identity.Demographics{BirthDate: "1941-08-12", FamilyName: "Brooks"}, nil
		}
		right := identity.Demographics{BirthDate: "1941-08-12", FamilyName: "Brooks"}
		first, _, _ := s.Invite(ctx, "demo-walter")
		second, _, _ := s.Invite(ctx, "demo-walter")
		pid, err := s.CheckActivation(ctx, first, right, lookup)
		if err != nil {
			t.Fatal(err)
		}
		// Both checked before either is activated: the second loses at
		// Activate, inside its transaction.
		pid2, err := s.CheckActivation(ctx, second, right, lookup)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Activate(ctx, first, pid, &identity.Account{Email: "walter@example.com"}); err != nil {
			t.Fatal(err)
		}
		err = s.Activate(ctx, second, pid2, &identity.Account{Email: "walter.two@example.com"})
		if !errors.Is(err, identity.ErrPatientHasAccount) || !strings.Contains(apperr.MessageOf(err), "sign in with it") {
			t.Errorf("second account for the record: %v", err)
		}
		if _, err := s.AccountByEmail(ctx, "walter.two@example.com"); err == nil {
			t.Error("a second account was made")
		}
		if _, _, err := s.Invite(ctx, "demo-walter"); !errors.Is(err, identity.ErrPatientHasAccount) {
			t.Errorf("inviting for a record with an account: %v, want ErrPatientHasAccount", err)
		}
	})
}
