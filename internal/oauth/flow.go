package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/clinical/store"
	"carefront/internal/jobs"
	"carefront/internal/sqldb"
)

// Lifetimes of the flow's artifacts.
const (
	// RequestTTL is how long a person has to sign in and approve.
	RequestTTL = 10 * time.Minute
	// CodeTTL is how long an authorization code works (once).
	CodeTTL = time.Minute
	// DefaultAccessTTL is an access token's life; 5 to 15 minutes may
	// be configured.
	DefaultAccessTTL = 10 * time.Minute
	// DefaultRefreshTTL is how long after the grant refresh tokens work
	// with offline_access (the absolute refresh lifetime).
	DefaultRefreshTTL = 90 * 24 * time.Hour
	// OnlineRefreshTTL is the same with online_access: no longer than a
	// portal session.
	OnlineRefreshTTL = 12 * time.Hour
	// RefreshGrace is how long after a refresh token was used it may be
	// used again (two requests refreshing the same token at once); past
	// it, a second use is taken as theft and ends the whole family.
	RefreshGrace = 5 * time.Second
)

// Errors of the flow, each the OAuth error the endpoint answers.
var (
	ErrNoRequest     = apperr.New(apperr.NotFound, "this sign-in request has expired or is unknown; go back to the app and start again")
	ErrBadCode       = apperr.New(apperr.Invalid, "invalid_grant: the authorization code is unknown, expired or used")
	ErrBadRefresh    = apperr.New(apperr.Invalid, "invalid_grant: the refresh token is unknown, expired or revoked")
	ErrTokenInactive = apperr.New(apperr.Unauthorized, "the access token is unknown, expired or revoked")
)

// Request is an authorization request from the authorize endpoint to
// the code exchange.
type Request struct {
	ID           string
	ClientID     string
	RedirectURI  string
	Scopes       []Scope // requested; the approved ones once GrantID is set
	State        string
	Nonce        string
	Challenge    string // PKCE S256 code challenge
	ResponseMode string
	Launch       string // an EHR launch's key (launchKey: its value's hash)
	GrantID      string // set when the person approved
	AuthTime     time.Time
	AMR          []string
	Created      time.Time
	Expires      time.Time
}

// Grant is a person's grant of an app to one record.
type Grant struct {
	ID        string
	ClientID  string
	Account   string // the person who granted it
	Patient   string // whose record
	Caregiver bool   // Account acts for Patient as a caregiver
	// FHIRUser is the person's FHIR resource ("Patient/ID", or a
	// caregiver's "RelatedPerson/ID"), the ID token's fhirUser.
	FHIRUser string
	Scopes   []Scope
	Created  time.Time
	Expires  time.Time // refresh tokens stop working then
	LastUsed time.Time
	Revoked  time.Time
}

// Active reports whether the grant still lets its app in at t.
func (g *Grant) Active(t time.Time) bool { return g.Revoked.IsZero() && t.Before(g.Expires) }

// Tokens are what a code exchange or a refresh issues.
type Tokens struct {
	Access        string
	AccessExpires time.Time
	Refresh       string // empty without offline_access or online_access
	Scopes        []Scope
	Grant         *Grant
}

// TokenInfo is what an access token stands for.
type TokenInfo struct {
	// ID names the token in audit records: the first half of its hash in
	// hex (the token itself is never written anywhere).
	ID      string
	Grant   *Grant
	Scopes  []Scope
	Expires time.Time
	Family  string
}

// Flow keeps authorization requests, grants, codes and tokens.
type Flow struct {
	DB    *sqldb.DB
	Audit *audit.Writer
	// AccessTTL is an access token's life (DefaultAccessTTL when 0).
	AccessTTL time.Duration
	// RefreshTTL is the absolute refresh lifetime (DefaultRefreshTTL
	// when 0).
	RefreshTTL time.Duration
	// Store is carefront's own FHIR store, which keeps each grant as a
	// Consent in the patient's record (ConsentResource), written in the
	// grant's transaction. Nil keeps the grant table only.
	Store *store.Store
	// Notices queues PHI-free notices in the change's transaction (an
	// app connected, disconnected, its access about to end); nil sends
	// none.
	Notices Notifier
}

// Notifier queues a notice in tx: to an account, or to the account of
// a patient's own record if there is one (identity.Auth).
type Notifier interface {
	QueueNotice(ctx context.Context, tx *sqldb.Tx, accountID, event string) error
	QueuePatientNotice(ctx context.Context, tx *sqldb.Tx, patientID, event string) error
}

// Notices the flow sends (identity's catalogue of notices).
const (
	NoticeConnected    = "app-connected"
	NoticeDisconnected = "app-disconnected"
	NoticeEnding       = "app-access-ends"
)

// notify queues event to the patient whose record it is and, when a
// caregiver granted it, to the caregiver too.
func (f *Flow) notify(ctx context.Context, tx *sqldb.Tx, g *Grant, event string) error {
	if f.Notices == nil {
		return nil
	}
	if err := f.Notices.QueuePatientNotice(ctx, tx, g.Patient, event); err != nil {
		return err
	}
	if g.Caregiver {
		return f.Notices.QueueNotice(ctx, tx, g.Account, event)
	}
	return nil
}

// appName is a registered app's name ("" when it has none).
func (f *Flow) appName(ctx context.Context, clientID string) (string, error) {
	var name string
	err := f.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT name FROM oauth_client WHERE id = ?", clientID).Scan(&name)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return name, err
}

func (f *Flow) now() time.Time { return f.DB.Now().UTC() }

func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func randomID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func hashOf(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// CreateRequest keeps a new authorization request, valid RequestTTL.
func (f *Flow) CreateRequest(ctx context.Context, r Request) (*Request, error) {
	r.ID, r.Created = randomID(), f.now()
	r.Expires = r.Created.Add(RequestTTL)
	r.GrantID, r.AuthTime, r.AMR = "", time.Time{}, nil
	err := f.DB.Write(ctx, func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO oauth_request (id, client_id, redirect_uri, scopes, state, nonce, challenge, response_mode, launch, created, expires)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, r.ClientID, r.RedirectURI, Format(r.Scopes), r.State, r.Nonce, r.Challenge,
			r.ResponseMode, nullable(r.Launch), r.Created.UnixMicro(), r.Expires.UnixMicro())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("oauth: request: %w", err)
	}
	return &r, nil
}

const requestCols = "id, client_id, redirect_uri, scopes, state, nonce, challenge, response_mode, launch, grant_id, auth_time, amr, created, expires"

func scanRequest(row interface{ Scan(...any) error }) (*Request, error) {
	var (
		r                Request
		scopes           string
		launch, grant    sql.NullString
		amr              sql.NullString
		authTime         sql.NullInt64
		created, expires int64
	)
	if err := row.Scan(&r.ID, &r.ClientID, &r.RedirectURI, &scopes, &r.State, &r.Nonce, &r.Challenge, &r.ResponseMode, &launch, &grant, &authTime, &amr, &created, &expires); err != nil {
		return nil, err
	}
	var err error
	if r.Scopes, err = ParseScopes(scopes); err != nil {
		return nil, fmt.Errorf("oauth: request %s: stored scopes: %w", r.ID, err)
	}
	r.Launch, r.GrantID = launch.String, grant.String
	if authTime.Valid {
		r.AuthTime = time.UnixMicro(authTime.Int64).UTC()
	}
	if amr.String != "" {
		r.AMR = strings.Split(amr.String, " ")
	}
	r.Created, r.Expires = time.UnixMicro(created).UTC(), time.UnixMicro(expires).UTC()
	return &r, nil
}

// Request returns a request not yet expired; ErrNoRequest otherwise.
func (f *Flow) Request(ctx context.Context, id string) (*Request, error) {
	var r *Request
	err := f.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
		var err error
		r, err = scanRequest(tx.QueryRow(ctx, "SELECT "+requestCols+" FROM oauth_request WHERE id = ? AND expires > ?", id, f.now().UnixMicro()))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoRequest
	}
	return r, err
}

// Approval is a person's answer to an authorization request.
type Approval struct {
	Account   string
	Patient   string
	Caregiver bool
	FHIRUser  string // "Patient/ID", or a caregiver's "RelatedPerson/ID"
	// Scopes are those that stayed ticked: each within one requested
	// (Scope.Within), e.g. patient/Observation.rs for patient/*.rs.
	Scopes   []Scope
	AuthTime time.Time
	AMR      []string
	Address  string
}

// Approve records the person's grant for the request's app and ties it
// to the request, in one transaction with its audit record. It returns
// the grant and a one-time ticket that only the approving browser gets:
// the code is issued to whoever presents it (UseTicket), never to
// someone who merely knows the request's id. Scopes not requested are
// refused (Invalid); an expired or approved request is ErrNoRequest.
func (f *Flow) Approve(ctx context.Context, requestID string, a Approval) (*Grant, string, error) {
	r, err := f.Request(ctx, requestID)
	if err != nil {
		return nil, "", err
	}
	if r.GrantID != "" {
		return nil, "", ErrNoRequest
	}
	for _, s := range a.Scopes {
		if !slices.ContainsFunc(r.Scopes, s.Within) {
			return nil, "", apperr.New(apperr.Invalid, "%s was not asked for", s)
		}
	}
	if r.Launch != "" {
		// Opened from the portal: only the person who opened it, for the
		// record they opened it for.
		l, err := f.launchOf(ctx, r.ClientID, r.Launch)
		if err != nil {
			return nil, "", err
		}
		if l.Account != a.Account || l.Patient != a.Patient {
			return nil, "", apperr.New(apperr.Forbidden, "this app was opened for another record or by someone else")
		}
	}
	ticket := randomToken()
	now := f.now()
	if a.FHIRUser == "" {
		a.FHIRUser = "Patient/" + a.Patient
	}
	g := &Grant{ID: randomID(), ClientID: r.ClientID, Account: a.Account, Patient: a.Patient, Caregiver: a.Caregiver, FHIRUser: a.FHIRUser,
		Scopes: a.Scopes, Created: now, Expires: now.Add(f.grantLife(a.Scopes))}
	rec := audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypePolicyChange},
		Action: audit.Create, Outcome: audit.Success, Reason: "app-authorized", User: "Person/" + a.Account,
		Patient: "Patient/" + a.Patient, Client: r.ClientID, Address: a.Address,
		Entities: []audit.Entity{{What: "Device/" + r.ClientID}, {What: "Consent/" + ConsentID(g.ID)}}}
	name, err := f.appName(ctx, r.ClientID)
	if err != nil {
		return nil, "", fmt.Errorf("oauth: approve: %w", err)
	}
	err = f.writeConsent(ctx, g, name, now, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO oauth_grant (id, client_id, account_id, patient_id, caregiver, fhir_user, scopes, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			g.ID, g.ClientID, g.Account, g.Patient, g.Caregiver, g.FHIRUser, Format(g.Scopes), g.Created.UnixMicro(), g.Expires.UnixMicro()); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, "UPDATE oauth_request SET grant_id = ?, scopes = ?, auth_time = ?, amr = ?, ticket_hash = ? WHERE id = ? AND grant_id IS NULL AND expires > ?",
			g.ID, Format(a.Scopes), a.AuthTime.UnixMicro(), strings.Join(a.AMR, " "), hashOf(ticket), r.ID, now.UnixMicro())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrNoRequest
		}
		if r.Launch != "" {
			// A launch starts one connection: spent here, once.
			h, _ := hex.DecodeString(r.Launch)
			res, err := tx.Exec(ctx, "DELETE FROM oauth_launch WHERE hash = ? AND expires > ?", h, now.UnixMicro())
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return ErrNoLaunch
			}
		}
		if err := f.notify(ctx, tx, g, NoticeConnected); err != nil {
			return err
		}
		return f.Audit.Stage(ctx, tx, rec)
	})
	if errors.Is(err, ErrNoRequest) || errors.Is(err, ErrNoLaunch) {
		return nil, "", err
	}
	if err != nil {
		return nil, "", fmt.Errorf("oauth: approve: %w", err)
	}
	if err := f.Audit.Chain(ctx); err != nil {
		return nil, "", err
	}
	return g, ticket, nil
}

// Deny ends a request the person refused, with its audit record, and
// returns it (the app is told access_denied at its redirect URI). An
// expired or answered request is ErrNoRequest.
func (f *Flow) Deny(ctx context.Context, requestID, account, patient, address string) (*Request, error) {
	r, err := f.Request(ctx, requestID)
	if err != nil {
		return nil, err
	}
	now := f.now()
	rec := audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypePolicyChange},
		Action: audit.Execute, Outcome: audit.Success, Reason: "app-authorization-denied", User: "Person/" + account,
		Client: r.ClientID, Address: address, Entities: []audit.Entity{{What: "Device/" + r.ClientID}}}
	if patient != "" {
		rec.Patient = "Patient/" + patient
	}
	err = f.DB.Write(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, "UPDATE oauth_request SET expires = ? WHERE id = ? AND grant_id IS NULL AND expires > ?",
			now.UnixMicro(), r.ID, now.UnixMicro())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrNoRequest
		}
		return f.Audit.Stage(ctx, tx, rec)
	})
	if errors.Is(err, ErrNoRequest) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("oauth: deny: %w", err)
	}
	return r, f.Audit.Chain(ctx)
}

// UseTicket spends the approving browser's ticket for a request: it
// reports whether ticket is the request's, once.
func (f *Flow) UseTicket(ctx context.Context, requestID, ticket string) (bool, error) {
	if ticket == "" {
		return false, nil
	}
	var n int64
	err := f.DB.Write(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, "UPDATE oauth_request SET ticket_hash = NULL WHERE id = ? AND ticket_hash = ? AND grant_id IS NOT NULL AND expires > ?",
			requestID, hashOf(ticket), f.now().UnixMicro())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("oauth: ticket: %w", err)
	}
	return n == 1, nil
}

// grantLife is how long a grant's refresh tokens may be used.
func (f *Flow) grantLife(scopes []Scope) time.Duration {
	switch {
	case slices.ContainsFunc(scopes, func(s Scope) bool { return s.Plain == ScopeOffline }):
		if f.RefreshTTL > 0 {
			return f.RefreshTTL
		}
		return DefaultRefreshTTL
	case slices.ContainsFunc(scopes, func(s Scope) bool { return s.Plain == ScopeOnline }):
		return OnlineRefreshTTL
	}
	return f.accessTTL()
}

func (f *Flow) accessTTL() time.Duration {
	if f.AccessTTL > 0 {
		return f.AccessTTL
	}
	return DefaultAccessTTL
}

// SaveCode keeps the code issued for an approved request (its hash),
// valid CodeTTL.
func (f *Flow) SaveCode(ctx context.Context, requestID, code string) error {
	now := f.now()
	var n int64
	err := f.DB.Write(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, "UPDATE oauth_request SET code_hash = ?, code_expires = ? WHERE id = ? AND grant_id IS NOT NULL AND code_hash IS NULL AND expires > ?",
			hashOf(code), now.Add(CodeTTL).UnixMicro(), requestID, now.UnixMicro())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("oauth: save code: %w", err)
	}
	if n != 1 {
		return ErrNoRequest
	}
	return nil
}

// Exchange redeems a code and issues its tokens in one transaction:
// check (the app, its redirect URI, the PKCE verifier) runs on the
// approved request before the code is marked used, so a caller who only
// holds the code cannot burn it. A code used before is a replay: every
// token issued from it is revoked (RFC 6749 section 4.1.2), the attempt
// is audited, and the answer is ErrBadCode, as for an unknown or expired
// code. A failed check is its own error, and changes nothing.
func (f *Flow) Exchange(ctx context.Context, code string, check func(*Request) error) (*Request, *Tokens, error) {
	now := f.now()
	var (
		r        *Request
		t        *Tokens
		replayed *Request
		refused  error
	)
	err := f.DB.Write(ctx, func(tx *sqldb.Tx) error {
		var used sql.NullInt64
		var expires int64
		var id string
		q := "SELECT id, code_expires, code_used_at FROM oauth_request WHERE code_hash = ?"
		if tx.Dialect() == sqldb.Postgres {
			q += " FOR UPDATE" // two exchanges of one code take turns
		}
		err := tx.QueryRow(ctx, q, hashOf(code)).Scan(&id, &expires, &used)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrBadCode
		}
		if err != nil {
			return err
		}
		if r, err = scanRequest(tx.QueryRow(ctx, "SELECT "+requestCols+" FROM oauth_request WHERE id = ?", id)); err != nil {
			return err
		}
		if used.Valid {
			replayed = r
			return f.revokeFamily(ctx, tx, id, r.GrantID, r.ClientID, "authorization-code-replayed")
		}
		if expires <= now.UnixMicro() || r.GrantID == "" {
			return ErrBadCode
		}
		if refused = check(r); refused != nil {
			return refused
		}
		if _, err := tx.Exec(ctx, "UPDATE oauth_request SET code_used_at = ? WHERE id = ?", now.UnixMicro(), id); err != nil {
			return err
		}
		g, err := grantIn(ctx, tx, r.GrantID)
		if err != nil {
			return err
		}
		var disabled sql.NullInt64
		if err := tx.QueryRow(ctx, "SELECT disabled_at FROM oauth_client WHERE id = ?", g.ClientID).Scan(&disabled); err != nil {
			return err
		}
		if disabled.Valid {
			return ErrBadCode // an app disabled gets nothing more
		}
		t, err = f.issue(ctx, tx, g, r.ID, g.Scopes, g.Scopes, "token-issued")
		return err
	})
	if replayed != nil {
		if err != nil {
			return nil, nil, fmt.Errorf("oauth: exchange: %w", err)
		}
		if err := f.Audit.Chain(ctx); err != nil {
			return nil, nil, err
		}
		return nil, nil, ErrBadCode
	}
	if refused != nil {
		return nil, nil, refused
	}
	if err != nil {
		if errors.Is(err, ErrBadCode) || errors.Is(err, ErrBadRefresh) || apperr.CodeOf(err) == apperr.Invalid {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("oauth: exchange: %w", err)
	}
	return r, t, nil
}

// revokeFamily ends every token of a family taken to be stolen (a code
// or refresh token used again), and stages the security alert in the
// same transaction, naming the app and the patient.
func (f *Flow) revokeFamily(ctx context.Context, tx *sqldb.Tx, family, grantID, clientID, reason string) error {
	if _, err := tx.Exec(ctx, "UPDATE oauth_token SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL", f.now().UnixMicro(), family); err != nil {
		return err
	}
	rec := audit.Record{Type: audit.TypeSecurityAlert, Action: audit.Execute, Outcome: audit.SeriousFailure,
		Reason: reason, Client: clientID, Entities: []audit.Entity{{What: "Device/" + clientID}}}
	var patient string
	if err := tx.QueryRow(ctx, "SELECT patient_id FROM oauth_grant WHERE id = ?", grantID).Scan(&patient); err == nil {
		rec.Patient = "Patient/" + patient
	}
	return f.Audit.Stage(ctx, tx, rec)
}

// issue makes an access token with scopes and, when keep holds
// offline_access or online_access, a refresh token that keeps them (a
// narrower access token never narrows what the family may refresh to).
// issue writes new tokens under g in tx, with their audit record
// (reason token-issued or token-refreshed), staged in tx: durable with
// the tokens, and chained by the audit writer's own pass (within half
// its checkpoint interval) rather than a second commit the app waits for.
func (f *Flow) issue(ctx context.Context, tx *sqldb.Tx, g *Grant, family string, scopes, keep []Scope, reason string) (*Tokens, error) {
	now := f.now()
	if !g.Active(now) {
		return nil, ErrBadRefresh
	}
	t := &Tokens{Access: randomToken(), AccessExpires: now.Add(f.accessTTL()), Scopes: scopes, Grant: g}
	if t.AccessExpires.After(g.Expires) {
		t.AccessExpires = g.Expires
	}
	rows := [][]any{{hashOf(t.Access), "access", g.ID, family, Format(scopes), now.UnixMicro(), t.AccessExpires.UnixMicro()}}
	if slices.ContainsFunc(keep, func(s Scope) bool { return s.Plain == ScopeOffline || s.Plain == ScopeOnline }) {
		t.Refresh = randomToken()
		rows = append(rows, []any{hashOf(t.Refresh), "refresh", g.ID, family, Format(keep), now.UnixMicro(), g.Expires.UnixMicro()})
	}
	q, args := "INSERT INTO oauth_token (hash, kind, grant_id, family, scopes, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?)", rows[0]
	if len(rows) == 2 {
		q += ", (?, ?, ?, ?, ?, ?, ?)"
		args = append(append([]any{}, rows[0]...), rows[1]...)
	}
	if _, err := tx.Exec(ctx, q, args...); err != nil {
		return nil, err
	}
	if now.Sub(g.LastUsed) > LastUsedEvery { // the connected apps page's "last used"
		if _, err := tx.Exec(ctx, "UPDATE oauth_grant SET last_used = ? WHERE id = ?", now.UnixMicro(), g.ID); err != nil {
			return nil, err
		}
	}
	rec := audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypeTokenIssue}, Action: audit.Execute,
		Outcome: audit.Success, Reason: reason, User: "Person/" + g.Account, Patient: "Patient/" + g.Patient, Client: g.ClientID,
		Token: hex.EncodeToString(hashOf(t.Access)[:16]), Entities: []audit.Entity{{What: "Device/" + g.ClientID}}}
	if g.Caregiver {
		rec.OnBehalf = "Patient/" + g.Patient
	}
	if err := f.Audit.Stage(ctx, tx, rec); err != nil {
		return nil, err
	}
	return t, nil
}

const grantCols = "id, client_id, account_id, patient_id, caregiver, fhir_user, scopes, created, expires, last_used, revoked_at"

func scanGrant(row interface{ Scan(...any) error }) (*Grant, error) {
	var (
		g                 Grant
		scopes            string
		created, expires  int64
		lastUsed, revoked sql.NullInt64
	)
	if err := row.Scan(&g.ID, &g.ClientID, &g.Account, &g.Patient, &g.Caregiver, &g.FHIRUser, &scopes, &created, &expires, &lastUsed, &revoked); err != nil {
		return nil, err
	}
	var err error
	if g.Scopes, err = storedScopes(scopes); err != nil {
		return nil, fmt.Errorf("oauth: grant %s: stored scopes: %w", g.ID, err)
	}
	g.Created, g.Expires = time.UnixMicro(created).UTC(), time.UnixMicro(expires).UTC()
	if lastUsed.Valid {
		g.LastUsed = time.UnixMicro(lastUsed.Int64).UTC()
	}
	if revoked.Valid {
		g.Revoked = time.UnixMicro(revoked.Int64).UTC()
	}
	return &g, nil
}

func grantIn(ctx context.Context, tx *sqldb.Tx, id string) (*Grant, error) {
	return scanGrant(tx.QueryRow(ctx, "SELECT "+grantCols+" FROM oauth_grant WHERE id = ?", id))
}

// Refresh rotates a refresh token of clientID: it is marked used, and a
// new access token (with the scopes asked: a subset of the family's, all
// of them when none) and a new refresh token (with all of the family's)
// are issued. A token used within RefreshGrace is refreshed again (two
// requests at once), and the refresh token its first use issued is
// superseded, so a family has one live refresh token; a token used
// before that, or a superseded one presented again, is a replay, and its
// whole family is revoked. Every failure is ErrBadRefresh.
func (f *Flow) Refresh(ctx context.Context, clientID, refresh string, scopes []Scope) (*Tokens, error) {
	now := f.now()
	var (
		t      *Tokens
		replay bool
		grant  string
	)
	err := f.DB.Write(ctx, func(tx *sqldb.Tx) error {
		var (
			family, scopeList string
			expires           int64
			used, revoked     sql.NullInt64
		)
		var disabled sql.NullInt64
		q := `SELECT t.grant_id, t.family, t.scopes, t.expires, t.used_at, t.revoked_at, c.disabled_at
			FROM oauth_token t JOIN oauth_grant g ON g.id = t.grant_id JOIN oauth_client c ON c.id = g.client_id
			WHERE t.hash = ? AND t.kind = 'refresh'`
		if tx.Dialect() == sqldb.Postgres {
			q += " FOR UPDATE OF t" // two refreshes of one token take turns
		}
		err := tx.QueryRow(ctx, q, hashOf(refresh)).Scan(&grant, &family, &scopeList, &expires, &used, &revoked, &disabled)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrBadRefresh
		}
		if err != nil {
			return err
		}
		g, err := grantIn(ctx, tx, grant)
		if err != nil {
			return err
		}
		if g.ClientID != clientID || expires <= now.UnixMicro() || !g.Active(now) || disabled.Valid {
			return ErrBadRefresh // an app disabled gets nothing more
		}
		theft := used.Valid && (revoked.Valid || now.Sub(time.UnixMicro(used.Int64)) > RefreshGrace)
		if theft {
			replay = true
			return f.revokeFamily(ctx, tx, family, grant, clientID, "refresh-token-reused")
		}
		if revoked.Valid {
			return ErrBadRefresh
		}
		have, err := ParseScopes(scopeList)
		if err != nil {
			return err
		}
		if len(scopes) == 0 {
			scopes = have
		}
		for _, s := range scopes {
			if !slices.ContainsFunc(have, func(h Scope) bool { return h.String() == s.String() }) {
				return apperr.New(apperr.Invalid, "invalid_scope: %s was not granted", s)
			}
		}
		if used.Valid {
			// Within the grace window: the refresh token the first use
			// issued is superseded (marked used and revoked, so it counts
			// as a replay if it comes back).
			if _, err := tx.Exec(ctx, "UPDATE oauth_token SET revoked_at = ?, used_at = COALESCE(used_at, ?) WHERE family = ? AND kind = 'refresh' AND revoked_at IS NULL AND used_at IS NULL AND created >= ? AND hash <> ?",
				now.UnixMicro(), now.UnixMicro(), family, used.Int64, hashOf(refresh)); err != nil {
				return err
			}
		} else if _, err := tx.Exec(ctx, "UPDATE oauth_token SET used_at = ? WHERE hash = ?", now.UnixMicro(), hashOf(refresh)); err != nil {
			return err
		}
		t, err = f.issue(ctx, tx, g, family, scopes, have, "token-refreshed")
		return err
	})
	if replay && err == nil {
		if err := f.Audit.Chain(ctx); err != nil {
			return nil, err
		}
		return nil, ErrBadRefresh
	}
	if err != nil {
		if errors.Is(err, ErrBadRefresh) || apperr.CodeOf(err) == apperr.Invalid {
			return nil, err
		}
		return nil, fmt.Errorf("oauth: refresh: %w", err)
	}
	return t, nil
}

// Lookup returns what an access token stands for, if it is in force: not
// expired or revoked, its grant not revoked, its app not disabled.
// Everything else is ErrTokenInactive.
func (f *Flow) Lookup(ctx context.Context, access string) (*TokenInfo, error) {
	now := f.now()
	hash := hashOf(access)
	var info *TokenInfo
	err := f.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
		var (
			family, scopes    string
			expires           int64
			revoked, disabled sql.NullInt64
		)
		// One statement: the token, its grant and whether its app is
		// disabled (every request of every app starts here).
		row := tx.QueryRow(ctx, lookupQuery, hash)
		g, err := scanGrant(prefixScan{row, []any{&family, &scopes, &expires, &revoked, &disabled}})
		if err != nil {
			return err
		}
		if revoked.Valid || disabled.Valid || expires <= now.UnixMicro() || !g.Revoked.IsZero() {
			return sql.ErrNoRows
		}
		ss, err := storedScopes(scopes)
		if err != nil {
			return err
		}
		info = &TokenInfo{ID: hex.EncodeToString(hash[:16]), Grant: g, Scopes: ss, Expires: time.UnixMicro(expires).UTC(), Family: family}
		return nil
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrTokenInactive
	}
	if err != nil {
		return nil, fmt.Errorf("oauth: token lookup: %w", err)
	}
	if now.Sub(info.Grant.LastUsed) > LastUsedEvery {
		// The connected apps page's "last used", written at most once a
		// minute per grant. It is bookkeeping (every request is in the
		// audit trail), so a failure here does not refuse the request.
		f.DB.Write(ctx, func(tx *sqldb.Tx) error {
			_, err := tx.Exec(ctx, "UPDATE oauth_grant SET last_used = ? WHERE id = ? AND (last_used IS NULL OR last_used < ?)",
				now.UnixMicro(), info.Grant.ID, now.Add(-LastUsedEvery).UnixMicro())
			return err
		})
	}
	return info, nil
}

// lookupQuery is Lookup's one statement: the token, its grant and whether
// its app is disabled (every request of every app starts here).
var lookupQuery = `SELECT t.family, t.scopes, t.expires, t.revoked_at, c.disabled_at, ` + prefixed("g.", grantCols) + `
	FROM oauth_token t JOIN oauth_grant g ON g.id = t.grant_id JOIN oauth_client c ON c.id = g.client_id
	WHERE t.hash = ? AND t.kind = 'access'`

// LastUsedEvery is how often a grant's last use is written.
const LastUsedEvery = time.Minute

// Ending notices: the people of a grant that lasts longer than
// endingMinLife are told once, endingNotice before it ends, that the
// app's access is about to end (and that they can connect it again).
const (
	endingNotice  = 7 * 24 * time.Hour
	endingMinLife = 14 * 24 * time.Hour
)

// NoticeEnding tells the people of every long-lived grant in force that
// ends within a week, once per grant; it returns how many were told.
// Several instances may run it at once: each grant is claimed in the
// transaction that queues its notice.
func (f *Flow) NoticeEnding(ctx context.Context) (int, error) {
	now := f.now()
	due, err := f.grants(ctx, "SELECT "+grantCols+` FROM oauth_grant WHERE revoked_at IS NULL AND end_notice_at IS NULL
		AND expires > ? AND expires <= ? AND expires - created > ?`, now.UnixMicro(), now.Add(endingNotice).UnixMicro(), endingMinLife.Microseconds())
	if err != nil {
		return 0, fmt.Errorf("oauth: ending notices: %w", err)
	}
	told := 0
	for i := range due {
		g := &due[i]
		claimed := false
		err := f.DB.Write(ctx, func(tx *sqldb.Tx) error {
			claimed = false
			res, err := tx.Exec(ctx, "UPDATE oauth_grant SET end_notice_at = ? WHERE id = ? AND end_notice_at IS NULL AND revoked_at IS NULL",
				now.UnixMicro(), g.ID)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return nil // told by another instance, or disconnected
			}
			claimed = true
			return f.notify(ctx, tx, g, NoticeEnding)
		})
		if err != nil {
			return told, fmt.Errorf("oauth: ending notices: %w", err)
		}
		if claimed {
			told++
		}
	}
	return told, nil
}

// RevokeToken ends a token the app holds (RFC 7009): an access token
// alone; a refresh token with its whole family. A token that is not the
// app's, or unknown, changes nothing (and is no error, as the RFC asks).
func (f *Flow) RevokeToken(ctx context.Context, clientID, token string) error {
	now := f.now()
	rec := audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypePolicyChange}, Action: audit.Delete,
		Outcome: audit.Success, Reason: "token-revoked-by-app", Client: clientID, Entities: []audit.Entity{{What: "Device/" + clientID}}}
	revoked := false
	err := f.DB.Write(ctx, func(tx *sqldb.Tx) error {
		var kind, family, client string
		err := tx.QueryRow(ctx, `SELECT t.kind, t.family, g.client_id FROM oauth_token t JOIN oauth_grant g ON g.id = t.grant_id WHERE t.hash = ?`,
			hashOf(token)).Scan(&kind, &family, &client)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && client != clientID) {
			return nil
		}
		if err != nil {
			return err
		}
		if kind == "refresh" {
			_, err = tx.Exec(ctx, "UPDATE oauth_token SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL", now.UnixMicro(), family)
		} else {
			_, err = tx.Exec(ctx, "UPDATE oauth_token SET revoked_at = ? WHERE hash = ? AND revoked_at IS NULL", now.UnixMicro(), hashOf(token))
		}
		if err != nil {
			return err
		}
		revoked = true
		return f.Audit.Stage(ctx, tx, rec)
	})
	if err != nil || !revoked {
		return err
	}
	return f.Audit.Chain(ctx)
}

// RevokeGrant disconnects an app from a record: the grant and every
// token issued under it stop working at their next use. Only the
// account that granted it, or the patient whose record it is, may (the
// caller says which it is); anything else is ErrNoGrant.
func (f *Flow) RevokeGrant(ctx context.Context, grantID, patient, by string) error {
	now := f.now()
	var g *Grant
	err := f.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
		var err error
		g, err = grantIn(ctx, tx, grantID)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (g.Patient != patient || !g.Revoked.IsZero())) {
		return ErrNoGrant
	}
	if err != nil {
		return fmt.Errorf("oauth: revoke grant: %w", err)
	}
	name, err := f.appName(ctx, g.ClientID)
	if err != nil {
		return fmt.Errorf("oauth: revoke grant: %w", err)
	}
	rec := audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypePolicyChange},
		Action: audit.Delete, Outcome: audit.Success, Reason: "app-disconnected", User: by, Patient: "Patient/" + patient,
		Client: g.ClientID, Entities: []audit.Entity{{What: "Device/" + g.ClientID}, {What: "Consent/" + ConsentID(g.ID)}}}
	ended := *g
	ended.Revoked = now
	err = f.writeConsent(ctx, &ended, name, now, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, "UPDATE oauth_grant SET revoked_at = ?, revoked_by = ? WHERE id = ? AND patient_id = ? AND revoked_at IS NULL",
			now.UnixMicro(), by, grantID, patient)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrNoGrant // disconnected at the same moment elsewhere
		}
		if _, err := tx.Exec(ctx, "UPDATE oauth_token SET revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL", now.UnixMicro(), grantID); err != nil {
			return err
		}
		if err := f.notify(ctx, tx, g, NoticeDisconnected); err != nil {
			return err
		}
		return f.Audit.Stage(ctx, tx, rec)
	})
	if errors.Is(err, ErrNoGrant) {
		return err
	}
	if err != nil {
		return fmt.Errorf("oauth: revoke grant: %w", err)
	}
	return f.Audit.Chain(ctx)
}

// ErrNoGrant means no grant in force has the id for that record.
var ErrNoGrant = apperr.New(apperr.NotFound, "no app connection in force has that id")

// Grants returns the grants of a patient's record, newest first.
func (f *Flow) Grants(ctx context.Context, patient string) ([]Grant, error) {
	return f.grants(ctx, "SELECT "+grantCols+" FROM oauth_grant WHERE patient_id = ? ORDER BY created DESC, id", patient)
}

// grants runs a query selecting grantCols and returns its grants.
func (f *Flow) grants(ctx context.Context, query string, args ...any) ([]Grant, error) {
	var out []Grant
	err := f.DB.Read(ctx, func(tx *sqldb.Tx) error {
		out = out[:0]
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			g, err := scanGrant(rows)
			if err != nil {
				return err
			}
			out = append(out, *g)
		}
		return rows.Err()
	})
	return out, err
}

// PurgeAfter is how long expired requests, tokens and assertion ids are
// kept before Purge removes them.
const PurgeAfter = 24 * time.Hour

// Purge removes authorization requests, tokens and client assertion ids
// that expired more than PurgeAfter ago (grants stay: they are the
// history the patient's Sharing page shows). It returns how many rows
// went.
func (f *Flow) Purge(ctx context.Context) (int64, error) {
	cut := f.now().Add(-PurgeAfter).UnixMicro()
	var n int64
	err := f.DB.Write(ctx, func(tx *sqldb.Tx) error {
		n = 0
		for _, q := range []string{
			"DELETE FROM oauth_token WHERE expires < ?",
			"DELETE FROM oauth_request WHERE expires < ?",
			"DELETE FROM oauth_jti WHERE expires < ?",
		} {
			res, err := tx.Exec(ctx, q, cut)
			if err != nil {
				return err
			}
			k, _ := res.RowsAffected()
			n += k
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("oauth: purge: %w", err)
	}
	return n, nil
}

// errClosedElsewhere rolls back a Consent another instance closed first.
var errClosedElsewhere = errors.New("oauth: consent closed by another instance")

// CloseEnded writes, once, the Consent of every grant that ended without
// being disconnected (its refresh lifetime over, or its app disabled) as
// inactive, so the patient's record says the app no longer has access.
// It returns how many it closed.
func (f *Flow) CloseEnded(ctx context.Context) (int, error) {
	now := f.now()
	ended, err := f.grants(ctx, "SELECT "+prefixed("g.", grantCols)+` FROM oauth_grant g JOIN oauth_client c ON c.id = g.client_id
		WHERE g.revoked_at IS NULL AND g.consent_closed_at IS NULL AND (g.expires <= ? OR c.disabled_at IS NOT NULL)`, now.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("oauth: close ended grants: %w", err)
	}
	closed := 0
	for i := range ended {
		g := &ended[i]
		name, err := f.appName(ctx, g.ClientID)
		if err != nil {
			return closed, err
		}
		reason := "app-grant-expired"
		if g.Expires.After(now) {
			g.Expires = now // its app was disabled: the grant ends now
			reason = "app-disabled"
		}
		// The record of the Consent's change, as a disconnection has: no
		// person acted, so the app and the patient's record are named.
		rec := audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypePolicyChange},
			Action: audit.Update, Outcome: audit.Success, Reason: reason, Patient: "Patient/" + g.Patient,
			Client: g.ClientID, Entities: []audit.Entity{{What: "Device/" + g.ClientID}, {What: "Consent/" + ConsentID(g.ID)}}}
		err = f.writeConsent(ctx, g, name, now, func(tx *sqldb.Tx) error {
			res, err := tx.Exec(ctx, "UPDATE oauth_grant SET consent_closed_at = ? WHERE id = ? AND consent_closed_at IS NULL", now.UnixMicro(), g.ID)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return errClosedElsewhere
			}
			return f.Audit.Stage(ctx, tx, rec)
		})
		switch {
		case errors.Is(err, errClosedElsewhere):
		case err != nil:
			return closed, fmt.Errorf("oauth: close ended grants: %w", err)
		default:
			closed++
		}
	}
	if closed > 0 {
		if err := f.Audit.Chain(ctx); err != nil {
			return closed, fmt.Errorf("oauth: close ended grants: %w", err)
		}
	}
	return closed, nil
}

// prefixScan scans a row whose first columns go to pre, the rest to the
// caller's destinations (a row that selects more than a scanner reads).
type prefixScan struct {
	row interface{ Scan(...any) error }
	pre []any
}

func (p prefixScan) Scan(dest ...any) error { return p.row.Scan(append(p.pre, dest...)...) }

// prefixed qualifies each of a comma-separated column list.
func prefixed(p, cols string) string {
	parts := strings.Split(cols, ", ")
	for i := range parts {
		parts[i] = p + parts[i]
	}
	return strings.Join(parts, ", ")
}

// PurgeArgs is the hourly job that runs NoticeEnding, CloseEnded and
// Purge.
type PurgeArgs struct{}

// Kind names the job.
func (PurgeArgs) Kind() string { return "oauth-purge" }

// PurgeJob is the job queue's handler and its schedule: every hour, and
// once at start.
func (f *Flow) PurgeJob() (jobs.Handler, jobs.Periodic) {
	return jobs.Handle(func(ctx context.Context, _ jobs.Job, _ PurgeArgs) error {
		if _, err := f.NoticeEnding(ctx); err != nil {
			return err
		}
		if _, err := f.CloseEnded(ctx); err != nil {
			return err
		}
		_, err := f.Purge(ctx)
		return err
	}), jobs.Periodic{Every: time.Hour, Args: func() jobs.Args { return PurgeArgs{} }}
}
