package identity

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/notify"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
)

// Auth runs sign-in checks: throttling, password, second factor, and an
// audit record for every attempt. Its answers do not tell whether an
// account exists: unknown addresses get the same message, the same
// throttling and the same argon2 cost as wrong passwords.
type Auth struct {
	Store  *Store
	Hasher *Hasher
	Audit  *audit.Writer
	// Jobs queues mail (sign-in codes, links, security notices); nil sends
	// none. Mail is what the queued mail jobs send through (MailHandler),
	// and Keys seal the secrets mail jobs carry.
	Jobs Enqueuer
	Mail notify.Sender
	Keys *seal.Keys
	// SMS sends the text messages people chose (NoticePrefs); nil sends
	// none.
	SMS notify.SMSSender
	// Zone is the clinic's time zone, where quiet hours are kept (nil:
	// UTC).
	Zone *time.Location
	// WebAuthn is the relying party for passkeys (NewRelyingParty); nil
	// turns passkeys off.
	WebAuthn *webauthn.WebAuthn
}

// ErrSignIn is the one answer to a wrong email or password.
var ErrSignIn = apperr.New(apperr.Unauthorized, "the email or password is not right")

// ThrottledError asks the person to wait before trying again.
type ThrottledError struct{ Wait time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many attempts; try again in %d seconds", int(e.Wait.Seconds()+0.999))
}

// Unwrap makes it a rate-limited apperr.
func (e *ThrottledError) Unwrap() error { return apperr.New(apperr.RateLimited, "%s", e.Error()) }

func (a *Auth) record(ctx context.Context, acct *Account, sub audit.Coding, outcome audit.Outcome, reason, addr string, sessionHex ...string) error {
	return a.Audit.Append(ctx, authRecord(acct, sub, outcome, reason, addr, sessionHex...))
}

// recordTx stages the audit record of a change in the change's own
// transaction (audit.Writer.Stage), so both commit or neither does; after
// the commit, chain moves it into the hash chain.
func (a *Auth) recordTx(ctx context.Context, tx *sqldb.Tx, acct *Account, sub audit.Coding, outcome audit.Outcome, reason, addr string, sessionHex ...string) error {
	return a.Audit.Stage(ctx, tx, authRecord(acct, sub, outcome, reason, addr, sessionHex...))
}

// chain moves the records staged by recordTx into the hash chain. Its
// error is not the request's: the records are on disk with their change,
// and the writer chains them at its next tick (or next start) if not now.
func (a *Auth) chain(ctx context.Context) {
	a.Audit.Chain(ctx)
}

func authRecord(acct *Account, sub audit.Coding, outcome audit.Outcome, reason, addr string, sessionHex ...string) audit.Record {
	r := audit.Record{Type: audit.TypeUserAuthentication, Subtype: []audit.Coding{sub}, Action: audit.Execute,
		Outcome: outcome, Reason: reason, Address: addr}
	if len(sessionHex) > 0 {
		r.Session = sessionHex[0]
	}
	if acct != nil {
		r.User = "Person/" + acct.ID
		if acct.PatientID != "" {
			r.Patient = "Patient/" + acct.PatientID
		}
	}
	return r
}

// recordUnknown audits an attempt for an address with no account, naming
// the requestor by the keyed hash of the normalized address, never by what
// was typed.
func (a *Auth) recordUnknown(ctx context.Context, email string, sub audit.Coding, reason, addr string) error {
	return a.Audit.Append(ctx, a.unknownRecord(email, sub, reason, addr))
}

func (a *Auth) unknownRecord(email string, sub audit.Coding, reason, addr string) audit.Record {
	return audit.Record{Type: audit.TypeUserAuthentication, Subtype: []audit.Coding{sub}, Action: audit.Execute,
		Outcome: audit.MinorFailure, Reason: reason, Address: addr, UserHash: hex.EncodeToString(a.Store.EmailHash(email))}
}

// Password checks an email and password. It returns the account, ErrSignIn,
// a *ThrottledError, or ErrBusy (too many hashes in flight: answer 429).
func (a *Auth) Password(ctx context.Context, email, password, addr string) (*Account, error) {
	acct, err := a.Store.AccountByEmail(ctx, email)
	if err != nil && !errors.Is(err, ErrNoAccount) {
		return nil, err
	}
	if acct == nil {
		return nil, a.unknownAccount(ctx, email, password, addr)
	}
	th, err := a.Store.CheckThrottle(ctx, acct.Email)
	if err != nil {
		return nil, err
	}
	if th.Wait > 0 {
		reason := "throttled"
		if th.Locked {
			reason = "locked"
		}
		if err := a.record(ctx, acct, audit.SubtypeLogin, audit.MinorFailure, reason, addr); err != nil {
			return nil, err
		}
		return nil, &ThrottledError{Wait: th.Wait}
	}
	ok, rehash, err := a.Hasher.Verify(ctx, acct.PasswordHash, password)
	if errors.Is(err, ErrBusy) {
		return nil, err
	}
	if err != nil || !ok {
		locked, ferr := a.Store.RecordFailure(ctx, acct.Email)
		if ferr != nil {
			return nil, ferr
		}
		reason := "bad-password"
		if locked {
			reason = "bad-password-locked"
			a.Notice(ctx, acct, "locked")
		}
		if err := a.record(ctx, acct, audit.SubtypeLogin, audit.MinorFailure, reason, addr); err != nil {
			return nil, err
		}
		return nil, ErrSignIn
	}
	if rehash {
		if h, err := a.Hasher.Hash(ctx, password); err == nil {
			a.Store.SetPasswordHash(ctx, acct.ID, h)
		}
	}
	// The first factor alone is not a sign-in (a step); the second factor
	// or a passkey completes one, and that is the Login record.
	return acct, a.record(ctx, acct, audit.SubtypeAuthStep, audit.Success, "password-ok", addr)
}

// unknownAccount spends the same hash and keeps the same throttle as a
// wrong password would (in the same table, under the same normalized key,
// so case variants of an address cannot tell known from unknown), then
// answers alike.
func (a *Auth) unknownAccount(ctx context.Context, email, password, addr string) error {
	th, err := a.Store.CheckThrottle(ctx, email)
	if err != nil {
		return err
	}
	if th.Wait > 0 {
		reason := "throttled"
		if th.Locked {
			reason = "locked"
		}
		if err := a.recordUnknown(ctx, email, audit.SubtypeLogin, reason, addr); err != nil {
			return err
		}
		return &ThrottledError{Wait: th.Wait}
	}
	if _, _, err := a.Hasher.Verify(ctx, "", password); errors.Is(err, ErrBusy) {
		return err
	}
	if _, err := a.Store.RecordFailure(ctx, email); err != nil {
		return err
	}
	if err := a.recordUnknown(ctx, email, audit.SubtypeLogin, "unknown-account", addr); err != nil {
		return err
	}
	return ErrSignIn
}

// AccountEvent audits a change to how the account signs in that identity
// did not make itself (new recovery codes shown by the web layer).
func (a *Auth) AccountEvent(ctx context.Context, acct *Account, reason, addr, sessionHex string) error {
	return a.record(ctx, acct, audit.SubtypeAccountChange, audit.Success, reason, addr, sessionHex)
}

// SessionEvent audits a session starting or getting a new id (a Session
// record: the Login record is the completed sign-in's) or ending (Logout),
// naming the session by the hash of its id.
func (a *Auth) SessionEvent(ctx context.Context, acct *Account, logout bool, reason, addr, sessionHex string) error {
	sub := audit.SubtypeSession
	if logout {
		sub = audit.SubtypeLogout
	}
	return a.record(ctx, acct, sub, audit.Success, reason, addr, sessionHex)
}

// SecondFactor checks an authenticator code, an emailed code or a
// recovery code and reports which it was ("totp", "email-code" or
// "recovery-code").
func (a *Auth) SecondFactor(ctx context.Context, acct *Account, code, addr, sessionHex string) (string, error) {
	return a.secondFactor(ctx, acct, code, addr, sessionHex, true)
}

// StepUp checks a second factor for a sensitive action (changing factors,
// the email address or the password): an authenticator code or a recovery
// code, never an emailed code, which the mailbox alone would give.
func (a *Auth) StepUp(ctx context.Context, acct *Account, code, addr, sessionHex string) (string, error) {
	return a.secondFactor(ctx, acct, code, addr, sessionHex, false)
}

func (a *Auth) secondFactor(ctx context.Context, acct *Account, code, addr, sessionHex string, allowEmail bool) (string, error) {
	th, err := a.Store.CheckThrottle(ctx, acct.Email)
	if err != nil {
		return "", err
	}
	if th.Wait > 0 {
		a.record(ctx, acct, audit.SubtypeLogin, audit.MinorFailure, "throttled", addr)
		return "", &ThrottledError{Wait: th.Wait}
	}
	method := "totp"
	err = a.Store.VerifyTOTP(ctx, acct.ID, code)
	if errors.Is(err, ErrBadCode) && allowEmail && len(strings.TrimSpace(code)) == 6 {
		ok, eerr := a.Store.UseEmailCode(ctx, acct.ID, code)
		if eerr != nil {
			return "", eerr
		}
		if ok {
			method, err = "email-code", nil
		}
	}
	if errors.Is(err, ErrBadCode) && len(code) > 8 {
		method = "recovery-code"
		ok, rerr := a.Store.UseRecoveryCode(ctx, acct.ID, code)
		if rerr != nil {
			return "", rerr
		}
		if ok {
			err = nil
		}
	}
	if errors.Is(err, ErrBadCode) {
		locked, ferr := a.Store.RecordFailure(ctx, acct.Email)
		if ferr != nil {
			return "", ferr
		}
		reason := "bad-" + method
		if locked {
			reason += "-locked"
			a.Notice(ctx, acct, "locked")
		}
		if err := a.record(ctx, acct, audit.SubtypeLogin, audit.MinorFailure, reason, addr, sessionHex); err != nil {
			return "", err
		}
		return "", ErrBadCode
	}
	if err != nil {
		return "", err
	}
	if err := a.Store.RecordSuccess(ctx, acct.Email); err != nil {
		return "", err
	}
	if method == "recovery-code" {
		a.Notice(ctx, acct, "recovery-code-used")
	}
	return method, a.record(ctx, acct, audit.SubtypeLogin, audit.Success, "signed-in-"+method, addr, sessionHex)
}
