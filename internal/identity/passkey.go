package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/sqldb"
)

// Passkeys (WebAuthn). A person may have several, each named by them. A
// passkey is a second factor after a password, and alone it is a whole
// sign-in: the browser offers it (discoverable credential, autofill) and
// the authenticator verifies the person (PIN or biometric), which makes
// two factors. Ceremony challenges are kept in the database, so any
// instance can finish what another began, and are spent on first use. The
// signature counter and backup flags are stored and checked at every use.

// CeremonyValid is how long a passkey prompt may stay open.
const CeremonyValid = 5 * time.Minute

// MaxPasskeys bounds the passkeys of one account.
const MaxPasskeys = 20

// Ceremony purposes.
const (
	purposeRegister     = "register"
	purposeSecondFactor = "second-factor"
	purposeSignIn       = "passkey-sign-in"
)

// ErrPasskey is the one answer to a passkey that could not be checked:
// another ceremony's or another site's response, an unknown credential, a
// counter that went back, an expired prompt.
var ErrPasskey = apperr.New(apperr.Unauthorized, "the passkey could not be checked; try again, or use another way to sign in")

// Passkey is one of an account's WebAuthn credentials, as its owner sees
// it.
type Passkey struct {
	ID             string
	AccountID      string
	Name           string
	SignCount      uint32
	BackupEligible bool // the passkey may be synced between devices
	BackupState    bool // it is synced (backed up) now
	Created        time.Time
	LastUsed       time.Time

	credential webauthn.Credential
}

// NewRelyingParty configures WebAuthn for the portal's public URL: its
// host is the relying party id and its origin the only one accepted.
// WebAuthn refuses IP addresses, so a development portal is reached at
// http://localhost:PORT.
func NewRelyingParty(baseURL, displayName string) (*webauthn.WebAuthn, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("passkeys need the portal's public URL, like https://portal.clinic.example (got %q)", baseURL)
	}
	return webauthn.New(&webauthn.Config{
		RPID:          u.Hostname(),
		RPDisplayName: displayName,
		RPOrigins:     []string{u.Scheme + "://" + u.Host},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: CeremonyValid, TimeoutUVD: CeremonyValid},
			Registration: webauthn.TimeoutConfig{Timeout: CeremonyValid, TimeoutUVD: CeremonyValid},
		},
	})
}

// webauthnUser is an account as go-webauthn sees it. The user handle is
// the account id: random, and no personal data.
type webauthnUser struct {
	acct  *Account
	creds []webauthn.Credential
}

func (u *webauthnUser) WebAuthnID() []byte                         { return []byte(u.acct.ID) }
func (u *webauthnUser) WebAuthnName() string                       { return u.acct.Email }
func (u *webauthnUser) WebAuthnDisplayName() string                { return u.acct.Email }
func (u *webauthnUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

func (s *Store) webauthnUser(ctx context.Context, acct *Account) (*webauthnUser, []Passkey, error) {
	keys, err := s.Passkeys(ctx, acct.ID)
	if err != nil {
		return nil, nil, err
	}
	u := &webauthnUser{acct: acct}
	for _, k := range keys {
		u.creds = append(u.creds, k.credential)
	}
	return u, keys, nil
}

// --- store ---

const passkeyCols = "id, account_id, name, record, sign_count, backup_eligible, backup_state, created, last_used"

func scanPasskey(row interface{ Scan(...any) error }) (Passkey, error) {
	var (
		p        Passkey
		record   []byte
		count    int64
		created  int64
		lastUsed sql.NullInt64
	)
	if err := row.Scan(&p.ID, &p.AccountID, &p.Name, &record, &count, &p.BackupEligible, &p.BackupState, &created, &lastUsed); err != nil {
		return p, err
	}
	if err := json.Unmarshal(record, &p.credential); err != nil {
		return p, fmt.Errorf("passkey %s: %w", p.ID, err)
	}
	p.SignCount = uint32(count)
	p.credential.Authenticator.SignCount = p.SignCount
	p.credential.Flags.BackupEligible, p.credential.Flags.BackupState = p.BackupEligible, p.BackupState
	p.Created, p.LastUsed = time.UnixMicro(created).UTC(), fromMicros(lastUsed)
	return p, nil
}

// Passkeys lists an account's passkeys, oldest first.
func (s *Store) Passkeys(ctx context.Context, accountID string) ([]Passkey, error) {
	f, err := s.Factors(ctx, accountID)
	return f.Passkeys, err
}

// Factors are the ways an account can confirm it is its owner after the
// password, as the sign-in, reset and account security pages show them.
type Factors struct {
	Passkeys         []Passkey // oldest first
	AuthenticatorApp bool      // an active one
	RecoveryCodes    int       // unused
}

// Factors reads an account's second factors in one go.
func (s *Store) Factors(ctx context.Context, accountID string) (Factors, error) {
	var f Factors
	err := s.db.ReadOne(ctx, func(tx *sqldb.Tx) error {
		rows, err := tx.Query(ctx, "SELECT "+passkeyCols+" FROM passkey WHERE account_id = ? ORDER BY created, id", accountID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			p, err := scanPasskey(rows)
			if err != nil {
				return err
			}
			f.Passkeys = append(f.Passkeys, p)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		var apps int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM account_totp WHERE account_id = ? AND active", accountID).Scan(&apps); err != nil {
			return err
		}
		f.AuthenticatorApp = apps > 0
		return tx.QueryRow(ctx, "SELECT COUNT(*) FROM account_recovery_code WHERE account_id = ? AND used_at IS NULL", accountID).Scan(&f.RecoveryCodes)
	})
	return f, err
}

// CheckPasskeyName says what is wrong with a name for a passkey, if
// anything: it is shown in lists, so it must be short, printable text.
func CheckPasskeyName(name string) (string, error) {
	n := strings.TrimSpace(name)
	switch {
	case n == "":
		return "", apperr.New(apperr.Invalid, "give the passkey a name, like \"My phone\"")
	case utf8.RuneCountInString(n) > 60:
		return "", apperr.New(apperr.Invalid, "a passkey name has at most 60 characters")
	case strings.IndexFunc(n, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return "", apperr.New(apperr.Invalid, "a passkey name cannot hold control characters")
	}
	return n, nil
}

func (s *Store) addPasskey(ctx context.Context, accountID, name string, c *webauthn.Credential) (*Passkey, error) {
	record, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	p := &Passkey{ID: newID(), AccountID: accountID, Name: name, SignCount: c.Authenticator.SignCount,
		BackupEligible: c.Flags.BackupEligible, BackupState: c.Flags.BackupState,
		Created: s.now().UTC().Truncate(time.Microsecond), credential: *c}
	err = s.db.Write(ctx, func(tx *sqldb.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM passkey WHERE account_id = ?", accountID).Scan(&n); err != nil {
			return err
		}
		if n >= MaxPasskeys {
			return apperr.New(apperr.Conflict, "an account can have at most %d passkeys; remove one first", MaxPasskeys)
		}
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM passkey WHERE credential_id = ?", c.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return apperr.New(apperr.Conflict, "this passkey is registered already")
		}
		_, err := tx.Exec(ctx, "INSERT INTO passkey (id, account_id, credential_id, name, record, sign_count, backup_eligible, backup_state, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			p.ID, accountID, c.ID, name, record, int64(p.SignCount), p.BackupEligible, p.BackupState, p.Created.UnixMicro())
		return err
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// usePasskey records a use: the new counter and backup state. It changes
// the row only if the counter is still the one read before the check, so
// one assertion raced twice succeeds once.
func (s *Store) usePasskey(ctx context.Context, p *Passkey, c *webauthn.Credential) (bool, error) {
	record, err := json.Marshal(c)
	if err != nil {
		return false, err
	}
	return s.spend(ctx, "UPDATE passkey SET sign_count = ?, backup_state = ?, record = ?, last_used = ? WHERE id = ? AND sign_count = ?",
		int64(c.Authenticator.SignCount), c.Flags.BackupState, record, s.now().UnixMicro(), p.ID, int64(p.SignCount))
}

// ErrLastFactor refuses to remove the only second factor an account has:
// sign-in would fall back to the password alone.
var ErrLastFactor = apperr.New(apperr.Conflict, "this is your only way to confirm it is you; add another passkey or an authenticator app before removing it")

// RemovePasskey deletes one of an account's passkeys, unless it is the
// account's last second factor.
func (s *Store) RemovePasskey(ctx context.Context, accountID, id string) error {
	return s.db.Write(ctx, func(tx *sqldb.Tx) error {
		n, err := factorCount(ctx, tx, accountID)
		if err != nil {
			return err
		}
		if n <= 1 {
			return ErrLastFactor
		}
		res, err := tx.Exec(ctx, "DELETE FROM passkey WHERE account_id = ? AND id = ?", accountID, id)
		if err != nil {
			return err
		}
		if k, _ := res.RowsAffected(); k != 1 {
			return apperr.New(apperr.NotFound, "no such passkey")
		}
		return nil
	})
}

// factorCount counts an account's working second factors: its passkeys
// and its active authenticator app.
func factorCount(ctx context.Context, tx *sqldb.Tx, accountID string) (int, error) {
	var keys, apps int
	if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM passkey WHERE account_id = ?", accountID).Scan(&keys); err != nil {
		return 0, err
	}
	if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM account_totp WHERE account_id = ? AND active", accountID).Scan(&apps); err != nil {
		return 0, err
	}
	return keys + apps, nil
}

// HasSecondFactor reports whether the account has a passkey or an active
// authenticator app; without one, the person must add one before anything
// else.
func (s *Store) HasSecondFactor(ctx context.Context, accountID string) (bool, error) {
	var n int
	err := s.db.ReadOne(ctx, func(tx *sqldb.Tx) error {
		var err error
		n, err = factorCount(ctx, tx, accountID)
		return err
	})
	return n > 0, err
}

// --- ceremonies ---

func ceremonyHash(token string) []byte {
	h := sha256.Sum256([]byte("carefront-webauthn:" + token))
	return h[:]
}

func (s *Store) saveCeremony(ctx context.Context, purpose, accountID string, data *webauthn.SessionData) (string, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return "", err
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	token := base64.RawURLEncoding.EncodeToString(b[:])
	now := s.now()
	err = s.db.Write(ctx, func(tx *sqldb.Tx) error {
		// Expired ceremonies are swept as new ones begin.
		if _, err := tx.Exec(ctx, "DELETE FROM webauthn_ceremony WHERE expires < ?", now.UnixMicro()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO webauthn_ceremony (id_hash, purpose, account_id, data, expires) VALUES (?, ?, ?, ?, ?)",
			ceremonyHash(token), purpose, nullStr(accountID), raw, now.Add(CeremonyValid).UnixMicro())
		return err
	})
	return token, err
}

// takeCeremony spends a ceremony: it is gone after this, whatever the
// outcome, so a challenge is answered at most once.
func (s *Store) takeCeremony(ctx context.Context, token string) (purpose, accountID string, data *webauthn.SessionData, err error) {
	now := s.now()
	var (
		raw     []byte
		acct    sql.NullString
		expires int64
	)
	// One statement takes the row and removes it, so two answers racing
	// with one token cannot both get it.
	err = s.db.Write(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "DELETE FROM webauthn_ceremony WHERE id_hash = ? RETURNING purpose, account_id, data, expires",
			ceremonyHash(token)).Scan(&purpose, &acct, &raw, &expires)
	})
	if errors.Is(err, sql.ErrNoRows) || err == nil && now.UnixMicro() > expires {
		return "", "", nil, ErrPasskey
	}
	if err != nil {
		return "", "", nil, err
	}
	data = new(webauthn.SessionData)
	if err := json.Unmarshal(raw, data); err != nil {
		return "", "", nil, err
	}
	return purpose, acct.String, data, nil
}

// --- ceremonies for people ---

// BeginPasskeyRegistration starts adding a passkey to acct: the options
// for navigator.credentials.create and the ceremony token to send back.
// The passkey must be discoverable (so it can sign in alone) and must
// verify the person (PIN or biometric).
func (a *Auth) BeginPasskeyRegistration(ctx context.Context, acct *Account) (*protocol.CredentialCreation, string, error) {
	u, keys, err := a.Store.webauthnUser(ctx, acct)
	if err != nil {
		return nil, "", err
	}
	if len(keys) >= MaxPasskeys {
		return nil, "", apperr.New(apperr.Conflict, "an account can have at most %d passkeys; remove one first", MaxPasskeys)
	}
	var exclude []protocol.CredentialDescriptor
	for _, c := range u.creds {
		exclude = append(exclude, c.Descriptor())
	}
	opts, data, err := a.WebAuthn.BeginRegistration(u,
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification: protocol.VerificationRequired,
		}),
		webauthn.WithExclusions(exclude),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation))
	if err != nil {
		return nil, "", err
	}
	token, err := a.Store.saveCeremony(ctx, purposeRegister, acct.ID, data)
	return opts, token, err
}

// FinishPasskeyRegistration checks the browser's answer to a registration
// ceremony begun for acct and stores the passkey under name.
func (a *Auth) FinishPasskeyRegistration(ctx context.Context, acct *Account, token, name string, response []byte, addr, sessionHex string) (*Passkey, error) {
	name, err := CheckPasskeyName(name)
	if err != nil {
		return nil, err
	}
	purpose, owner, data, err := a.Store.takeCeremony(ctx, token)
	if err == nil && (purpose != purposeRegister || owner != acct.ID) {
		err = ErrPasskey
	}
	var cred *webauthn.Credential
	if err == nil {
		var parsed *protocol.ParsedCredentialCreationData
		if parsed, err = protocol.ParseCredentialCreationResponseBytes(response); err == nil {
			var u *webauthnUser
			if u, _, err = a.Store.webauthnUser(ctx, acct); err == nil {
				cred, err = a.WebAuthn.CreateCredential(u, *data, parsed)
			}
		}
		if err != nil && !isInfra(err) {
			err = ErrPasskey
		}
	}
	if errors.Is(err, ErrPasskey) {
		return nil, a.failPasskey(ctx, acct, "bad-passkey-registration", addr, sessionHex, false)
	}
	if err != nil {
		return nil, err
	}
	p, err := a.Store.addPasskey(ctx, acct.ID, name, cred)
	if err != nil {
		return nil, err
	}
	if err := a.record(ctx, acct, audit.SubtypeAccountChange, audit.Success, "passkey-added", addr, sessionHex); err != nil {
		return nil, err
	}
	a.Notice(ctx, acct, "factor-added")
	return p, nil
}

// isInfra tells a database or context failure (answered as a server
// error) from a WebAuthn verification failure (answered as ErrPasskey).
func isInfra(err error) bool {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return false
	}
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || apperr.CodeOf(err) == apperr.Unavailable
}

// BeginPasskeySecondFactor starts a passkey check for a person who has
// given their password (or is stepping up): only their passkeys are
// offered.
func (a *Auth) BeginPasskeySecondFactor(ctx context.Context, acct *Account) (*protocol.CredentialAssertion, string, error) {
	u, keys, err := a.Store.webauthnUser(ctx, acct)
	if err != nil {
		return nil, "", err
	}
	if len(keys) == 0 {
		return nil, "", apperr.New(apperr.NotFound, "this account has no passkey")
	}
	opts, data, err := a.WebAuthn.BeginLogin(u, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return nil, "", err
	}
	token, err := a.Store.saveCeremony(ctx, purposeSecondFactor, acct.ID, data)
	return opts, token, err
}

// BeginPasskeySignIn starts a passkey-only sign-in: the browser offers
// whichever of its passkeys for this site the person picks (also in the
// email field's autofill), and the authenticator must verify the person.
func (a *Auth) BeginPasskeySignIn(ctx context.Context) (*protocol.CredentialAssertion, string, error) {
	opts, data, err := a.WebAuthn.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, "", err
	}
	token, err := a.Store.saveCeremony(ctx, purposeSignIn, "", data)
	return opts, token, err
}

// PasskeyResult is a checked passkey: whose, which one, and whether it
// made a whole sign-in on its own.
type PasskeyResult struct {
	Account *Account
	Passkey *Passkey
	Alone   bool // a passkey-only sign-in (counts as two factors)
}

// FinishPasskey checks the browser's answer to a sign-in ceremony. For a
// second factor, current is the account that gave its password; for a
// passkey-only sign-in the account is the passkey's owner, whoever
// current is.
// Every outcome is audited; a failure counts toward the account's lockout
// when the passkey names one.
func (a *Auth) FinishPasskey(ctx context.Context, token string, response []byte, current *Account, addr, sessionHex string) (*PasskeyResult, error) {
	purpose, owner, data, err := a.Store.takeCeremony(ctx, token)
	if err != nil && !errors.Is(err, ErrPasskey) {
		return nil, err
	}
	// A passkey-only sign-in names its account by itself (whoever was
	// signed in before, if anyone, is replaced); a second factor must be
	// finished by the account it was begun for.
	alone := purpose == purposeSignIn
	switch {
	case err != nil:
	case alone:
		current = nil
	case purpose == purposeSecondFactor && current != nil && owner == current.ID:
	default:
		err = ErrPasskey
	}
	parsed, perr := protocol.ParseCredentialRequestResponseBytes(response)
	if err == nil && perr != nil {
		err = ErrPasskey
	}
	// Whose passkey is it? For a second factor, the signed-in account's;
	// alone, the account its user handle names, if that account holds it.
	acct := current
	if alone && parsed != nil {
		acct = nil
		if found, ferr := a.Store.AccountByID(ctx, string(parsed.Response.UserHandle)); ferr == nil {
			acct = found
		} else if !errors.Is(ferr, ErrNoAccount) {
			return nil, ferr
		}
	}
	if err != nil || acct == nil {
		return nil, a.failPasskey(ctx, acct, "bad-passkey", addr, sessionHex, acct != nil)
	}
	th, err := a.Store.CheckThrottle(ctx, acct.Email)
	if err != nil {
		return nil, err
	}
	if th.Wait > 0 {
		a.record(ctx, acct, audit.SubtypeLogin, audit.MinorFailure, "throttled", addr, sessionHex)
		return nil, &ThrottledError{Wait: th.Wait}
	}
	u, keys, err := a.Store.webauthnUser(ctx, acct)
	if err != nil {
		return nil, err
	}
	var cred *webauthn.Credential
	if alone {
		_, cred, err = a.WebAuthn.ValidatePasskeyLogin(func(rawID, handle []byte) (webauthn.User, error) { return u, nil }, *data, parsed)
	} else {
		cred, err = a.WebAuthn.ValidateLogin(u, *data, parsed)
	}
	if err != nil {
		if isInfra(err) {
			return nil, err
		}
		return nil, a.failPasskey(ctx, acct, "bad-passkey", addr, sessionHex, true)
	}
	var used *Passkey
	for i := range keys {
		if string(keys[i].credential.ID) == string(cred.ID) {
			used = &keys[i]
		}
	}
	if used == nil {
		return nil, a.failPasskey(ctx, acct, "bad-passkey", addr, sessionHex, true)
	}
	if cred.Authenticator.CloneWarning {
		// The counter went back: this may be a copy of the authenticator.
		return nil, a.failPasskey(ctx, acct, "passkey-counter-went-back", addr, sessionHex, true)
	}
	if ok, err := a.Store.usePasskey(ctx, used, cred); err != nil {
		return nil, err
	} else if !ok {
		return nil, a.failPasskey(ctx, acct, "passkey-replayed", addr, sessionHex, true)
	}
	if err := a.Store.RecordSuccess(ctx, acct.Email); err != nil {
		return nil, err
	}
	reason := "signed-in-passkey"
	if alone {
		reason = "signed-in-passkey-only"
	}
	if err := a.record(ctx, acct, audit.SubtypeLogin, audit.Success, reason, addr, sessionHex); err != nil {
		return nil, err
	}
	used.SignCount, used.BackupState = cred.Authenticator.SignCount, cred.Flags.BackupState
	return &PasskeyResult{Account: acct, Passkey: used, Alone: alone}, nil
}

// failPasskey audits a failed passkey check and, when it names an account
// and counts, adds to that account's failures (locking it, and telling the
// owner, at the limit).
func (a *Auth) failPasskey(ctx context.Context, acct *Account, reason, addr, sessionHex string, counts bool) error {
	if acct != nil && counts {
		locked, err := a.Store.RecordFailure(ctx, acct.Email)
		if err != nil {
			return err
		}
		if locked {
			reason += "-locked"
			a.Notice(ctx, acct, "locked")
		}
	}
	if err := a.record(ctx, acct, audit.SubtypeLogin, audit.MinorFailure, reason, addr, sessionHex); err != nil {
		return err
	}
	return ErrPasskey
}

// RemovePasskey removes one of acct's passkeys (never the last factor),
// audits it and tells the owner.
func (a *Auth) RemovePasskey(ctx context.Context, acct *Account, id, addr, sessionHex string) error {
	if err := a.Store.RemovePasskey(ctx, acct.ID, id); err != nil {
		return err
	}
	if err := a.record(ctx, acct, audit.SubtypeAccountChange, audit.Success, "passkey-removed", addr, sessionHex); err != nil {
		return err
	}
	a.Notice(ctx, acct, "factor-removed")
	return nil
}
