package consent

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/audit"
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
	Until       time.Time
	// PatientBirth is the patient's date of birth (zero when the record
	// gives none), for the age policy.
	PatientBirth time.Time
	Created      time.Time
	CreatedBy    string
	Revoked      time.Time // zero while in force
}

// Active reports whether the grant is in force at t.
func (g Grant) Active(t time.Time) bool { return g.Revoked.IsZero() && t.Before(g.Until) }

// Grants keeps caregiver grants. Every grant and revocation bumps the
// patient's access version and is audited in the same transaction, so
// every carefront instance applies it at its next request.
type Grants struct {
	DB    *sqldb.DB
	Audit *audit.Writer
}

// MaxGrantYears bounds how far ahead a grant may end.
const MaxGrantYears = 10

// NewGrant is what a grant is made of.
type NewGrant struct {
	Patient string
	Email   string
	Preset  string
	Until   time.Time
	// PatientBirth is the patient's date of birth as their record gives it.
	PatientBirth time.Time
	// PatientName is the patient's name as their record gives it.
	PatientName string
	By          string // who grants: "Person/..." or a client id for the clinic's tools
	Address     string
}

// Grant records a caregiver grant. A malformed address, an unknown preset
// or an end in the past or more than ten years ahead is Invalid, and
// nothing is written. An account already holding the address is linked.
func (s *Grants) Grant(ctx context.Context, n NewGrant) (*Grant, error) {
	addr, err := mail.ParseAddress(n.Email)
	if err != nil || addr.Name != "" || addr.Address != strings.TrimSpace(n.Email) {
		return nil, apperr.New(apperr.Invalid, "%q is not an email address", clipText(n.Email))
	}
	kinds, ok := access.Presets[n.Preset]
	if !ok {
		return nil, apperr.New(apperr.Invalid, "the preset must be one of full or medications-visits")
	}
	now := s.DB.Now().UTC()
	if !n.Until.After(now) {
		return nil, apperr.New(apperr.Invalid, "the end of a grant must be in the future")
	}
	if n.Until.After(now.AddDate(MaxGrantYears, 0, 0)) {
		return nil, apperr.New(apperr.Invalid, "a grant ends within %d years", MaxGrantYears)
	}
	var b [12]byte
	rand.Read(b[:])
	g := &Grant{ID: "grant-" + hex.EncodeToString(b[:]), Patient: n.Patient, Email: strings.ToLower(addr.Address),
		Preset: n.Preset, Kinds: kinds, Until: n.Until.UTC(), PatientBirth: n.PatientBirth, PatientName: n.PatientName, Created: now, CreatedBy: n.By}
	rec := audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypePolicyChange},
		Action: audit.Create, Outcome: audit.Success, Reason: "proxy-grant", Address: n.Address, Patient: "Patient/" + n.Patient,
		Entities: []audit.Entity{{What: "Consent/" + g.ID}}}
	setActor(&rec, n.By)
	err = s.DB.Write(ctx, func(tx *sqldb.Tx) error {
		var account sql.NullString
		if err := tx.QueryRow(ctx, "SELECT id FROM account WHERE email = ? AND kind = 'person'", g.Email).Scan(&account); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		g.Account = account.String
		var birth sql.NullInt64
		if !g.PatientBirth.IsZero() {
			birth = sql.NullInt64{Int64: g.PatientBirth.UnixMicro(), Valid: true}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO proxy_grant (id, patient_id, patient_name, caregiver_email, caregiver_account, preset, kinds, until_at, patient_birth, created, created_by)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, g.ID, g.Patient, g.PatientName, g.Email, account, g.Preset, strings.Join(g.Kinds, ","),
			g.Until.UnixMicro(), birth, now.UnixMicro(), g.CreatedBy); err != nil {
			return err
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
	p := &access.Proxy{GrantID: g.ID, Kinds: g.Kinds, Until: g.Until, PatientBirth: g.PatientBirth, Granted: g.Created}
	if g.Account != "" {
		p.Account = "Person/" + g.Account
	}
	return p
}

// LoadPolicy is the access.Loader of caregiver grants: it adds the
// patient's grants not revoked and linked to an account to their policy.
func (s *Grants) LoadPolicy(ctx context.Context, tx *sqldb.Tx, patient string, p *access.Policy) error {
	gs, err := scanGrants(ctx, tx, "WHERE patient_id = ? AND revoked_at IS NULL AND caregiver_account IS NOT NULL ORDER BY id", patient)
	if err != nil {
		return err
	}
	for _, g := range gs {
		p.Proxies = append(p.Proxies, *g.Proxy())
	}
	return nil
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
		out, err = scanGrants(ctx, tx, where, args...)
		return err
	})
	return out, err
}

func scanGrants(ctx context.Context, tx *sqldb.Tx, where string, args ...any) ([]Grant, error) {
	var out []Grant
	rows, err := tx.Query(ctx, `SELECT id, patient_id, patient_name, caregiver_email, caregiver_account, preset, kinds, until_at, patient_birth, created, created_by, revoked_at
		FROM proxy_grant `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var g Grant
		var account sql.NullString
		var kinds string
		var until, created int64
		var revoked, birth sql.NullInt64
		if err := rows.Scan(&g.ID, &g.Patient, &g.PatientName, &g.Email, &account, &g.Preset, &kinds, &until, &birth, &created, &g.CreatedBy, &revoked); err != nil {
			return nil, err
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
	id, by, addr := r.ID, r.By, r.Address
	now := s.DB.Now().UTC()
	var g *Grant
	err := s.DB.Write(ctx, func(tx *sqldb.Tx) error {
		var patient string
		var account sql.NullString
		err := tx.QueryRow(ctx, "SELECT patient_id, caregiver_account FROM proxy_grant WHERE id = ? AND revoked_at IS NULL", id).Scan(&patient, &account)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNoGrant
		}
		if err != nil {
			return err
		}
		if (r.Patient != "" && r.Patient != patient) || (r.Caregiver != "" && r.Caregiver != account.String) {
			return ErrNoGrant
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
		if errors.Is(err, ErrNoGrant) {
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
