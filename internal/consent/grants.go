package consent

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/clinical/store"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
)

// Grant is one caregiver's access to one patient's record.
type Grant struct {
	ID      string
	Patient string // Patient id
	// PatientName is the patient's name as their record gave it when the
	// grant was made (the caregiver's switcher shows it).
	PatientName string
	Email       string // the caregiver's address, lower-cased
	Account     string // the caregiver's account, once linked; "" until then
	Preset      string
	Kinds       []string // empty: full access
	// DenyLabels are sensitivity codes (PSY, ETH, HIV, SEX) never shared
	// with the caregiver, whatever else the grant covers.
	DenyLabels []string
	Until      time.Time
	// PatientBirth is the patient's date of birth (zero when the record
	// gives none), for the age policy.
	PatientBirth time.Time
	Created      time.Time
	CreatedBy    string
	// Accepted is when the caregiver's account was linked; zero while the
	// invitation waits.
	Accepted time.Time
	// InviteExpires is when an invitation not yet accepted stops working.
	InviteExpires time.Time
	Revoked       time.Time // zero while in force
	// Ages is the clinic's age policy (Grants.Ages).
	Ages access.Ages
}

// Active reports whether the grant has not been revoked and has not
// reached its end (End) at t (it may still wait for the caregiver to accept).
func (g Grant) Active(t time.Time) bool { return g.Revoked.IsZero() && t.Before(g.End()) }

// End is when the grant stops giving access: its last day, or the
// patient's coming of age if a parent's grant reaches it first.
func (g Grant) End() time.Time { return g.Proxy().EndsAt() }

// Pending reports whether the grant waits for the caregiver to accept.
func (g Grant) Pending() bool { return g.Accepted.IsZero() }

// Grants keeps caregiver grants. Every grant and revocation bumps the
// patient's access version and is audited in the same transaction, so
// every carefront instance applies it at its next request.
type Grants struct {
	DB    *sqldb.DB
	Audit *audit.Writer
	// Mail queues invitation emails; nil sends none.
	Mail Mailer
	// AcceptURL is the invitation link without its secret, e.g.
	// "https://portal.example/caregiver/accept?code=".
	AcceptURL string
	// Store is carefront's own FHIR store, which keeps each grant as a
	// Consent resource (and an accepted caregiver's RelatedPerson),
	// written in the grant's transaction. Nil keeps the grant table only.
	Store *store.Store
	// Ages is the clinic's age policy for parents' grants; zero values
	// are access's defaults (12 and 18).
	Ages access.Ages
}

// write runs fn in a transaction that also writes the grant's Consent
// resource as g stands at now (when there is a store).
func (s *Grants) write(ctx context.Context, g func() Grant, now time.Time, fn func(*sqldb.Tx) error) error {
	if s.Store == nil {
		return s.DB.Write(ctx, fn)
	}
	b, err := consentBundle(g(), now)
	if err != nil {
		return err
	}
	_, err = s.Store.Process(ctx, b, store.BundleOptions{Import: true, Audit: func(ctx context.Context, tx *sqldb.Tx, _ *store.Result) error {
		return fn(tx)
	}})
	return err
}

// MaxGrantYears bounds how far ahead a grant may end.
const MaxGrantYears = 10

// NewGrant is what a grant is made of.
type NewGrant struct {
	Patient string
	Email   string
	// Preset is full, medications-visits or messages; or custom, with
	// Kinds naming the kinds of data (access.DataKinds).
	Preset string
	Kinds  []string
	Until  time.Time
	// PatientBirth is the patient's date of birth as their record gives it.
	PatientBirth time.Time
	// PatientName is the patient's name as their record gives it.
	PatientName string
	By          string // who grants: "Person/..." or a client id for the clinic's tools
	Address     string
	// Never names sensitive kinds never shared (NeverKinds).
	Never []string
	// Invite makes the grant an invitation: it is in force once the
	// caregiver accepts it with their own account, through the link
	// mailed to the address. Without it (the clinic establishing a
	// guardian) an account holding the address is linked at once, and an
	// address with no account is invited.
	Invite bool
	// SelfEmail is the granting patient's own address: a patient cannot
	// invite themself.
	SelfEmail string
}

// Mailer queues the invitation email and notices in the transaction of
// the change (the identity package's mail jobs).
type Mailer interface {
	QueueInvitation(ctx context.Context, tx *sqldb.Tx, to, link string) error
	// QueueNotice writes to an account; QueuePatientNotice to the account
	// of a patient's own record, if there is one.
	QueueNotice(ctx context.Context, tx *sqldb.Tx, accountID, event string) error
	QueuePatientNotice(ctx context.Context, tx *sqldb.Tx, patientID, event string) error
}

// Check validates a new grant at now and returns its address, lower-
// cased, and the FHIR types it covers (none for full access). A malformed
// address, one's own address, an unknown preset or kind, or an end in the
// past or more than ten years ahead is Invalid.
func (n NewGrant) Check(now time.Time) (email string, kinds []string, err error) {
	addr, err := mail.ParseAddress(n.Email)
	if err != nil || addr.Name != "" || addr.Address != strings.TrimSpace(n.Email) {
		return "", nil, apperr.New(apperr.Invalid, "%q is not an email address", clipText(n.Email))
	}
	email = strings.ToLower(addr.Address)
	if n.SelfEmail != "" && strings.EqualFold(email, n.SelfEmail) {
		return "", nil, apperr.New(apperr.Invalid, "that is your own email address: invite the person who helps you")
	}
	names, ok := access.Presets[n.Preset]
	switch {
	case n.Preset == "custom":
		if len(n.Kinds) == 0 {
			return "", nil, apperr.New(apperr.Invalid, "choose at least one kind of information to share")
		}
		names = n.Kinds
	case !ok:
		return "", nil, apperr.New(apperr.Invalid, "the preset must be one of full, medications-visits, messages or custom")
	}
	kinds, bad := access.KindTypes(names)
	if bad != "" {
		return "", nil, apperr.New(apperr.Invalid, "%q is not a kind of information that can be shared", clipText(bad))
	}
	for _, n := range n.Never {
		if _, ok := NeverKinds[n]; !ok {
			return "", nil, apperr.New(apperr.Invalid, "%q is not a kind of sensitive information", clipText(n))
		}
	}
	if !n.Until.After(now) {
		return "", nil, apperr.New(apperr.Invalid, "the end of a grant must be in the future")
	}
	if n.Until.After(now.AddDate(MaxGrantYears, 0, 0)) {
		return "", nil, apperr.New(apperr.Invalid, "a grant ends within %d years", MaxGrantYears)
	}
	return email, kinds, nil
}

// InvitationDays is how long an invitation link works.
const InvitationDays = 14

// Grant records a caregiver grant. A malformed address, one's own
// address, an unknown preset or kind, or an end in the past or more than
// ten years ahead is Invalid, and nothing is written.
func (s *Grants) Grant(ctx context.Context, n NewGrant) (*Grant, error) {
	now := s.DB.Now().UTC()
	email, kinds, err := n.Check(now)
	if err != nil {
		// Refused: audited, and nothing else written.
		rec := audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypePolicyChange},
			Action: audit.Create, Outcome: audit.MinorFailure, Reason: "proxy-grant-refused", Address: n.Address}
		if n.Patient != "" {
			rec.Patient = "Patient/" + n.Patient
		}
		setActor(&rec, n.By)
		if aerr := s.Audit.Append(ctx, rec); aerr != nil {
			return nil, aerr
		}
		return nil, err
	}
	var b [12]byte
	rand.Read(b[:])
	g := &Grant{ID: "grant-" + hex.EncodeToString(b[:]), Patient: n.Patient, Email: email,
		Preset: n.Preset, Kinds: kinds, Until: n.Until.UTC(), PatientBirth: n.PatientBirth, PatientName: n.PatientName, Created: now, CreatedBy: n.By, Ages: s.Ages}
	for _, name := range NeverNames {
		if slices.Contains(n.Never, name) {
			g.DenyLabels = append(g.DenyLabels, NeverKinds[name])
		}
	}
	rec := audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypePolicyChange},
		Action: audit.Create, Outcome: audit.Success, Reason: "proxy-grant", Address: n.Address, Patient: "Patient/" + n.Patient,
		Entities: []audit.Entity{{What: "Consent/" + g.ID}}}
	if n.Invite {
		rec.Reason = "proxy-invite"
	}
	setActor(&rec, n.By)
	var account sql.NullString
	if !n.Invite {
		err := s.DB.Read(ctx, func(tx *sqldb.Tx) error {
			err := tx.QueryRow(ctx, "SELECT id FROM account WHERE email = ? AND kind = 'person'", g.Email).Scan(&account)
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("consent: grant: %w", err)
		}
	}
	g.Account = account.String
	if account.Valid {
		g.Accepted = now
	}
	err = s.write(ctx, func() Grant { return *g }, now, func(tx *sqldb.Tx) error {
		var birth, accepted, expires sql.NullInt64
		if !g.PatientBirth.IsZero() {
			birth = sql.NullInt64{Int64: g.PatientBirth.UnixMicro(), Valid: true}
		}
		var inviteHash []byte
		var secret string
		if account.Valid {
			accepted = sql.NullInt64{Int64: now.UnixMicro(), Valid: true}
		} else {
			var b [32]byte
			rand.Read(b[:])
			secret = hex.EncodeToString(b[:])
			inviteHash = inviteHashOf(secret)
			g.InviteExpires = now.AddDate(0, 0, InvitationDays)
			expires = sql.NullInt64{Int64: g.InviteExpires.UnixMicro(), Valid: true}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO proxy_grant (id, patient_id, patient_name, caregiver_email, caregiver_account, preset, kinds, deny_labels, until_at, patient_birth, created, created_by, invite_hash, invite_expires, accepted_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, g.ID, g.Patient, g.PatientName, g.Email, account, g.Preset, strings.Join(g.Kinds, ","),
			strings.Join(g.DenyLabels, ","), g.Until.UnixMicro(), birth, now.UnixMicro(), g.CreatedBy, inviteHash, expires, accepted); err != nil {
			return err
		}
		if secret != "" && s.Mail != nil {
			if err := s.Mail.QueueInvitation(ctx, tx, g.Email, s.AcceptURL+secret); err != nil {
				return err
			}
		}
		if err := access.Bump(ctx, tx, g.Patient); err != nil {
			return err
		}
		return s.Audit.Stage(ctx, tx, rec)
	})
	if err != nil {
		return nil, fmt.Errorf("consent: grant: %w", err)
	}
	s.Audit.Chain(ctx)
	return g, nil
}

func inviteHashOf(secret string) []byte {
	h := sha256.Sum256([]byte("carefront-caregiver-invitation:" + secret))
	return h[:]
}

// ErrInvitation is every way an invitation link cannot be used: unknown,
// used, expired, revoked, or sent to another address. One error for all,
// so a link's state does not leak.
var ErrInvitation = apperr.New(apperr.NotFound, "this invitation link is not valid: it may have expired, been used, or been cancelled")

// Invitation returns the grant an invitation link names while it can be
// accepted.
func (s *Grants) Invitation(ctx context.Context, secret string) (*Grant, error) {
	if len(secret) != 64 {
		return nil, ErrInvitation
	}
	var gs []Grant
	err := s.DB.Read(ctx, func(tx *sqldb.Tx) error {
		var err error
		gs, err = s.scan(ctx, tx, "WHERE invite_hash = ? AND accepted_at IS NULL AND revoked_at IS NULL AND invite_expires > ?",
			inviteHashOf(secret), s.DB.Now().UnixMicro())
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(gs) != 1 || !gs[0].Active(s.DB.Now()) {
		return nil, ErrInvitation
	}
	return &gs[0], nil
}

// Accept links the grant an invitation link names to the caregiver's
// account, whose address must be the one invited (the link proved it),
// and puts it in force. The link works once.
func (s *Grants) Accept(ctx context.Context, secret, accountID, accountEmail, addr string) (*Grant, error) {
	g, err := s.Invitation(ctx, secret)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(g.Email, accountEmail) {
		if err := s.Audit.Append(ctx, audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypePolicyChange},
			Action: audit.Update, Outcome: audit.MinorFailure, Reason: "invitation-other-account", User: "Person/" + accountID, Address: addr,
			Patient: "Patient/" + g.Patient}); err != nil {
			return nil, err
		}
		return nil, apperr.New(apperr.Forbidden, "this invitation was sent to another email address: sign in with the account for that address")
	}
	now := s.DB.Now().UTC()
	accepted := *g
	accepted.Account, accepted.Accepted = accountID, now
	err = s.write(ctx, func() Grant { return accepted }, now, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE proxy_grant SET caregiver_account = ?, accepted_at = ?, invite_hash = NULL
			WHERE id = ? AND accepted_at IS NULL AND revoked_at IS NULL`, accountID, now.UnixMicro(), g.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrInvitation // accepted or revoked a moment ago
		}
		if err := access.Bump(ctx, tx, g.Patient); err != nil {
			return err
		}
		return s.Audit.Stage(ctx, tx, audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypePolicyChange},
			Action: audit.Update, Outcome: audit.Success, Reason: "proxy-accept", User: "Person/" + accountID, Address: addr,
			Patient: "Patient/" + g.Patient, Entities: []audit.Entity{{What: "Consent/" + g.ID}}})
	})
	if err != nil {
		if errors.Is(err, ErrInvitation) {
			return nil, err
		}
		return nil, fmt.Errorf("consent: accept: %w", err)
	}
	s.Audit.Chain(ctx)
	g.Account, g.Accepted = accountID, now
	return g, nil
}

// setActor names who acted in an audit record: a person, or a tool.
func setActor(rec *audit.Record, by string) {
	if strings.HasPrefix(by, "Person/") {
		rec.User = by
	} else {
		rec.Client = by
	}
}

// Proxy is the grant as the access decision applies it.
func (g Grant) Proxy() *access.Proxy {
	p := &access.Proxy{GrantID: g.ID, Kinds: g.Kinds, Until: g.Until, PatientBirth: g.PatientBirth, Granted: g.Created, Ages: g.Ages}
	if g.Account != "" {
		p.Account = "Person/" + g.Account
	}
	if !g.Pending() {
		p.RelatedPerson = RelatedPerson(g.ID)
	}
	return p
}

// LoadPolicy is the access.Loader of caregiver grants: it adds the
// patient's grants not revoked and linked to an account to their policy.
func (s *Grants) LoadPolicy(ctx context.Context, tx *sqldb.Tx, patient string, p *access.Policy) error {
	gs, err := s.scan(ctx, tx, "WHERE patient_id = ? AND revoked_at IS NULL AND caregiver_account IS NOT NULL AND accepted_at IS NOT NULL ORDER BY id", patient)
	if err != nil {
		return err
	}
	for _, g := range gs {
		p.Proxies = append(p.Proxies, *g.Proxy())
	}
	if s.Store == nil {
		return nil
	}
	// Every active privacy Consent in the patient's record: those of the
	// grants (their never-share exceptions) and any the clinic keeps.
	q, err := fhir.ParseQuery("Consent", url.Values{"status": {"active"}}, false)
	if err != nil {
		return err
	}
	q.Compartment, q.Count = patient, fhir.MaxCount
	for {
		page, err := s.Store.SearchIn(ctx, tx, q)
		if err != nil {
			return err
		}
		for _, r := range page.Matches {
			t, err := r.Tree()
			if err != nil {
				return err
			}
			if c, ok := ParseConsent(t); ok {
				p.Consents = append(p.Consents, c)
			}
		}
		if page.Next == "" {
			return nil
		}
		q.Cursor = page.Next
	}
}

// List returns a patient's grants, in force and ended, newest first.
func (s *Grants) List(ctx context.Context, patient string) ([]Grant, error) {
	return s.query(ctx, "WHERE patient_id = ? ORDER BY created DESC, id", patient)
}

// ForCaregiver returns the grants an account holds (in force or not).
func (s *Grants) ForCaregiver(ctx context.Context, account string) ([]Grant, error) {
	return s.query(ctx, "WHERE caregiver_account = ? ORDER BY created DESC, id", account)
}

func (s *Grants) query(ctx context.Context, where string, args ...any) ([]Grant, error) {
	var out []Grant
	err := s.DB.Read(ctx, func(tx *sqldb.Tx) error {
		var err error
		out, err = s.scan(ctx, tx, where, args...)
		return err
	})
	return out, err
}

// scan reads grants, each with the clinic's age policy.
func (s *Grants) scan(ctx context.Context, tx *sqldb.Tx, where string, args ...any) ([]Grant, error) {
	var out []Grant
	rows, err := tx.Query(ctx, `SELECT id, patient_id, patient_name, caregiver_email, caregiver_account, preset, kinds, deny_labels, until_at, patient_birth, created, created_by, revoked_at, accepted_at, invite_expires
		FROM proxy_grant `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var g Grant
		var account sql.NullString
		var kinds, deny string
		var until, created int64
		var revoked, birth, accepted, expires sql.NullInt64
		if err := rows.Scan(&g.ID, &g.Patient, &g.PatientName, &g.Email, &account, &g.Preset, &kinds, &deny, &until, &birth, &created, &g.CreatedBy, &revoked, &accepted, &expires); err != nil {
			return nil, err
		}
		if deny != "" {
			g.DenyLabels = strings.Split(deny, ",")
		}
		g.Account = account.String
		if kinds != "" {
			g.Kinds = strings.Split(kinds, ",")
		}
		g.Until, g.Created = time.UnixMicro(until).UTC(), time.UnixMicro(created).UTC()
		if birth.Valid {
			g.PatientBirth = time.UnixMicro(birth.Int64).UTC()
		}
		if revoked.Valid {
			g.Revoked = time.UnixMicro(revoked.Int64).UTC()
		}
		if accepted.Valid {
			g.Accepted = time.UnixMicro(accepted.Int64).UTC()
		}
		if expires.Valid {
			g.InviteExpires = time.UnixMicro(expires.Int64).UTC()
		}
		g.Ages = s.Ages
		out = append(out, g)
	}
	return out, rows.Err()
}

// ErrNoGrant means no grant in force has the id.
var ErrNoGrant = apperr.New(apperr.NotFound, "no grant in force has that id")

// Revocation is who ends which grant.
type Revocation struct {
	ID string
	// Patient, when set, is the only patient whose grant may be ended (a
	// patient ends grants of their own record).
	Patient string
	// Caregiver, when set, is the only account whose grant may be ended (a
	// caregiver gives up their own access).
	Caregiver string
	By        string // "Person/..." or the clinic's tool
	Address   string
}

// Revoke ends a grant now: the caregiver's next request, on any
// instance, no longer has the access. A grant not in force, or not the
// patient's or caregiver's the revocation names, is ErrNoGrant, and
// nothing changes.
func (s *Grants) Revoke(ctx context.Context, r Revocation) (*Grant, error) {
	for try := 0; ; try++ {
		g, err := s.revoke(ctx, r)
		if errors.Is(err, errStale) && try < 3 {
			continue // accepted a moment ago: the Consent is built again from the grant as it stands
		}
		if errors.Is(err, ErrNoGrant) && (r.Patient != "" || r.Caregiver != "") {
			// A person named a grant that is not theirs, or no longer in
			// force: refused, and audited.
			rec := audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypePolicyChange},
				Action: audit.Update, Outcome: audit.MinorFailure, Reason: "proxy-revoke-refused", Address: r.Address}
			if r.Patient != "" {
				rec.Patient = "Patient/" + r.Patient
			}
			setActor(&rec, r.By)
			if aerr := s.Audit.Append(ctx, rec); aerr != nil {
				return nil, aerr
			}
		}
		return g, err
	}
}

// errStale means the grant changed between the read a revocation builds
// its Consent from and the revocation's transaction.
var errStale = errors.New("consent: grant changed meanwhile")

func (s *Grants) revoke(ctx context.Context, r Revocation) (*Grant, error) {
	id, by, addr := r.ID, r.By, r.Address
	now := s.DB.Now().UTC()
	var before []Grant
	if err := s.DB.Read(ctx, func(tx *sqldb.Tx) error {
		var err error
		before, err = s.scan(ctx, tx, "WHERE id = ?", id)
		return err
	}); err != nil {
		return nil, fmt.Errorf("consent: revoke: %w", err)
	}
	if len(before) != 1 {
		return nil, ErrNoGrant
	}
	ended := before[0]
	ended.Revoked = now
	var g *Grant
	err := s.write(ctx, func() Grant { return ended }, now, func(tx *sqldb.Tx) error {
		var patient string
		var account sql.NullString
		var accepted sql.NullInt64
		err := tx.QueryRow(ctx, "SELECT patient_id, caregiver_account, accepted_at FROM proxy_grant WHERE id = ? AND revoked_at IS NULL", id).Scan(&patient, &account, &accepted)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNoGrant
		}
		if err != nil {
			return err
		}
		if (r.Patient != "" && r.Patient != patient) || (r.Caregiver != "" && r.Caregiver != account.String) {
			return ErrNoGrant
		}
		if accepted.Valid == before[0].Pending() {
			return errStale
		}
		if _, err := tx.Exec(ctx, "UPDATE proxy_grant SET revoked_at = ?, revoked_by = ? WHERE id = ?", now.UnixMicro(), by, id); err != nil {
			return err
		}
		if err := access.Bump(ctx, tx, patient); err != nil {
			return err
		}
		reason := "proxy-revoke"
		if r.Caregiver != "" {
			reason = "proxy-given-up"
		}
		rec := audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypePolicyChange},
			Action: audit.Update, Outcome: audit.Success, Reason: reason, Address: addr, Patient: "Patient/" + patient,
			Entities: []audit.Entity{{What: "Consent/" + id}}}
		setActor(&rec, by)
		g = &Grant{ID: id, Patient: patient, Account: account.String, Revoked: now}
		return s.Audit.Stage(ctx, tx, rec)
	})
	if err != nil {
		if errors.Is(err, ErrNoGrant) || errors.Is(err, errStale) {
			return nil, err
		}
		return nil, fmt.Errorf("consent: revoke: %w", err)
	}
	s.Audit.Chain(ctx)
	return g, nil
}

func clipText(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}
