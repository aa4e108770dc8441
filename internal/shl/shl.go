// Package shl is SMART Health Links (HL7 SMART Health Links): a patient,
// or a caregiver with full access, shares part of a record through a
// shlink:/ link and its QR code. carefront keeps each link's 32-byte key
// sealed and gives it only in the link; the contents are built afresh at
// every request (so the patient's current consent applies) and served as
// compact JWE (dir, A256GCM) through short-lived, single-use file
// locations; a passcode (flag P) is kept as an argon2id hash, with
// attempts counted atomically. Each access (when, the recipient's stated
// name, sealed) is kept in the link's own table.
package shl

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/clinical"
	"carefront/internal/identity"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
	"carefront/internal/views"
)

// Contents are what a link may hold, by the names forms use, each as
// the FHIR types it covers.
var Contents = map[string][]string{
	"summary":       {"Condition", "AllergyIntolerance", "MedicationRequest", "MedicationStatement", "Immunization"},
	"medications":   {"MedicationRequest", "MedicationStatement", "MedicationDispense"},
	"allergies":     {"AllergyIntolerance"},
	"immunizations": {"Immunization"},
	"results":       {"Observation", "DiagnosticReport"},
}

// ContentNames lists Contents in the order forms show them.
var ContentNames = []string{"summary", "medications", "allergies", "immunizations", "results"}

// Limits.
const (
	// Attempts is how many wrong passcodes a link takes before it locks.
	Attempts = 5
	// FileTTL is how long a file location works (once).
	FileTTL = 5 * time.Minute
	// MaxLabel is the spec's limit on a link's label.
	MaxLabel = 80
	// MaxDays bounds a link's life.
	MaxDays = 365
)

// Links keeps share links.
type Links struct {
	DB *sqldb.DB
	// Audit records each link made and stopped (who, for whose record).
	Audit *audit.Writer
	Keys  *seal.Keys
	Views *views.Builder
	// Hasher hashes passcodes, on a budget of its own (not sign-in's).
	Hasher *identity.Hasher
	// BaseURL is carefront's public address (manifest and file URLs).
	BaseURL string
}

// Link is one share link as its owner sees it.
type Link struct {
	ID, Patient, CreatedBy, Label string
	Contents                      []string
	Flags                         string
	Expires, Created, Revoked     time.Time
	AttemptsLeft                  int
	Accesses                      []Access
}

// Access is one use of a link: when, and who the recipient said they were.
type Access struct {
	At        time.Time
	Recipient string
}

// Active reports whether the link works at t.
func (l Link) Active(t time.Time) bool {
	return l.Revoked.IsZero() && (l.Expires.IsZero() || t.Before(l.Expires)) && (!strings.Contains(l.Flags, "P") || l.AttemptsLeft > 0)
}

// New is a link to make.
type New struct {
	// Owner is who makes it, as the decision knows them (the patient, or
	// a caregiver with full access): the link sees what they may see.
	Owner    access.Principal
	Label    string
	Contents []string
	Expires  time.Time // required: at most MaxDays ahead
	Passcode string    // "" for none
}

// Created is a new link: its shlink:/ URI and the viewer URL to share.
type Created struct {
	Link   Link
	URI    string // shlink:/...
	Viewer string // carefront's viewer page with the link in its fragment
}

// Create makes a link. Bad input (no contents, an unknown one, a label
// too long, an expiry past or beyond a year, a passcode under 6
// characters) is Invalid and writes nothing.
func (ls *Links) Create(ctx context.Context, n New) (*Created, error) {
	now := ls.DB.Now().UTC()
	label := strings.TrimSpace(n.Label)
	switch {
	case len(n.Contents) == 0:
		return nil, apperr.New(apperr.Invalid, "choose what the link shares")
	case utf8.RuneCountInString(label) > MaxLabel || strings.ContainsFunc(label, unicode.IsControl):
		return nil, apperr.New(apperr.Invalid, "a label is at most %d characters on one line", MaxLabel)
	case !n.Expires.After(now):
		return nil, apperr.New(apperr.Invalid, "a link must end in the future")
	case n.Expires.After(now.AddDate(0, 0, MaxDays).Add(time.Minute)):
		return nil, apperr.New(apperr.Invalid, "a link ends within a year")
	case n.Passcode != "" && utf8.RuneCountInString(n.Passcode) < 6:
		return nil, apperr.New(apperr.Invalid, "a passcode has at least 6 characters")
	case n.Owner.Patient == "" || n.Owner.User == "":
		return nil, apperr.New(apperr.Forbidden, "only the patient or a caregiver with full access makes links")
	}
	for _, c := range n.Contents {
		if _, ok := Contents[c]; !ok {
			return nil, apperr.New(apperr.Invalid, "%q is not something a link can share", c)
		}
	}
	key := make([]byte, 32)
	rand.Read(key)
	id := randomID()
	flags := "L"
	var hash sql.NullString
	if n.Passcode != "" {
		flags = "LP"
		h, err := ls.Hasher.Hash(ctx, n.Passcode)
		if err != nil {
			return nil, err
		}
		hash = sql.NullString{String: h, Valid: true}
	}
	sealed, err := ls.Keys.Seal(key, keyBinding(id))
	if err != nil {
		return nil, err
	}
	var expires sql.NullInt64
	if !n.Expires.IsZero() {
		expires = sql.NullInt64{Int64: n.Expires.UTC().UnixMicro(), Valid: true}
	}
	l := Link{ID: id, Patient: n.Owner.Patient, CreatedBy: n.Owner.User, Label: label, Contents: n.Contents, Flags: flags,
		Expires: n.Expires.UTC(), Created: now, AttemptsLeft: Attempts}
	err = ls.DB.Write(ctx, func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO shl_link (id, patient_id, created_by, label, contents, flags, key_sealed, passcode_hash, attempts_left, expires, created)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, l.Patient, l.CreatedBy, label, strings.Join(n.Contents, ","), flags, sealed, hash, Attempts, expires, now.UnixMicro())
		if err != nil {
			return err
		}
		return ls.stage(ctx, tx, "share-link-created", n.Owner.User, l.Patient, n.Owner.Address, n.Owner.Caregiver)
	})
	if err != nil {
		return nil, fmt.Errorf("shl: create: %w", err)
	}
	if ls.Audit != nil {
		ls.Audit.Chain(ctx)
	}
	uri, err := ls.uri(l, key)
	if err != nil {
		return nil, err
	}
	return &Created{Link: l, URI: uri, Viewer: ls.BaseURL + "/shl/view#" + uri}, nil
}

func (ls *Links) uri(l Link, key []byte) (string, error) {
	payload := map[string]any{"url": ls.BaseURL + "/shl/" + l.ID, "key": base64.RawURLEncoding.EncodeToString(key), "flag": l.Flags, "v": 1}
	if l.Label != "" {
		payload["label"] = l.Label
	}
	if !l.Expires.IsZero() {
		payload["exp"] = l.Expires.Unix()
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return "", err
	}
	return "shlink:/" + base64.RawURLEncoding.EncodeToString(b), nil
}

// SealedColumns are the columns this package seals, for re-encryption
// after a rotation of the encryption keyset. (An access's recipient is
// bound to its link's id, which several rows share: a batch boundary
// between them leaves the rest on their older key, which still opens
// them while the keyset keeps it.)
var SealedColumns = []seal.Column{
	{Table: "shl_link", IDColumn: "id", Column: "key_sealed"},
	{Table: "shl_access", IDColumn: "link_id", Column: "recipient_sealed"},
}

func keyBinding(id string) seal.Binding {
	return seal.Binding{Table: "shl_link", Column: "key_sealed", Row: id}
}

// randomID is 256 random bits, base64url: a manifest id or file location.
func randomID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ErrNoLink is every way a link does not work (unknown, revoked,
// expired, locked): the spec's 404, one answer for all.
var ErrNoLink = apperr.New(apperr.NotFound, "no such link, or it is no longer active")

// ErrBusy is a passcode that could not be checked now (every hashing
// slot taken): try again shortly; no attempt was spent.
var ErrBusy = apperr.New(apperr.RateLimited, "busy: try again in a moment")

// ErrRecipient is a manifest request without a recipient.
var ErrRecipient = apperr.New(apperr.Invalid, "recipient is required")

// PasscodeError is a wrong or missing passcode: 401 with the attempts
// left.
type PasscodeError struct{ Remaining int }

func (e *PasscodeError) Error() string { return "invalid passcode" }

// File is one file of a manifest.
type File struct {
	ContentType string `json:"contentType"`
	Location    string `json:"location"`
}

// Manifest answers a manifest request: the link must be active, the
// recipient named, the passcode right (flag P); every wrong passcode
// costs an attempt, taken atomically before the passcode is checked, so
// parallel guesses cannot exceed the limit. The access is kept, and a
// fresh single-use file location issued.
func (ls *Links) Manifest(ctx context.Context, id, recipient, passcode, addr string) ([]File, error) {
	recipient = strings.TrimSpace(recipient)
	if recipient == "" || len(recipient) > 200 {
		return nil, ErrRecipient
	}
	l, _, err := ls.get(ctx, id)
	now := ls.DB.Now().UTC()
	if err != nil || !l.Active(now) {
		return nil, ErrNoLink
	}
	if strings.Contains(l.Flags, "P") {
		var left int
		err := ls.DB.Write(ctx, func(tx *sqldb.Tx) error {
			return tx.QueryRow(ctx, "UPDATE shl_link SET attempts_left = attempts_left - 1 WHERE id = ? AND attempts_left > 0 AND revoked_at IS NULL RETURNING attempts_left", id).Scan(&left)
		})
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNoLink
		}
		if err != nil {
			return nil, err
		}
		var hash string
		if err := ls.DB.Read(ctx, func(tx *sqldb.Tx) error {
			return tx.QueryRow(ctx, "SELECT passcode_hash FROM shl_link WHERE id = ?", id).Scan(&hash)
		}); err != nil {
			return nil, err
		}
		giveBack := func() error {
			return ls.DB.Write(ctx, func(tx *sqldb.Tx) error {
				_, err := tx.Exec(ctx, "UPDATE shl_link SET attempts_left = attempts_left + 1 WHERE id = ? AND attempts_left < ?", id, Attempts)
				return err
			})
		}
		ok, _, err := ls.Hasher.Verify(ctx, hash, passcode)
		if err != nil {
			// Not checked (the hashing budget is full): the attempt is not
			// spent.
			if gerr := giveBack(); gerr != nil {
				return nil, gerr
			}
			if errors.Is(err, identity.ErrBusy) {
				return nil, ErrBusy
			}
			return nil, err
		}
		if !ok {
			// The wrong try is on record (the link's, never who typed it).
			if ls.Audit != nil {
				if err := ls.Audit.Append(ctx, audit.Record{Type: audit.TypeSecurityAlert, Action: audit.Execute, Outcome: audit.MinorFailure,
					Reason: "share-link-passcode-wrong", Client: "shl-" + id[:16], Address: addr, Patient: "Patient/" + l.Patient}); err != nil {
					return nil, err
				}
			}
			return nil, &PasscodeError{Remaining: left}
		}
		// The right passcode gives its attempt back.
		if err := giveBack(); err != nil {
			return nil, err
		}
	}
	sealed, err := ls.Keys.Seal([]byte(recipient), seal.Binding{Table: "shl_access", Column: "recipient_sealed", Row: id})
	if err != nil {
		return nil, err
	}
	file := randomID()
	err = ls.DB.Write(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO shl_access (link_id, at, recipient_sealed) VALUES (?, ?, ?)", id, now.UnixMicro(), sealed); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO shl_file (id, link_id, expires) VALUES (?, ?, ?)", file, id, now.Add(FileTTL).UnixMicro())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("shl: manifest: %w", err)
	}
	return []File{{ContentType: "application/fhir+json", Location: ls.BaseURL + "/shl/file/" + file}}, nil
}

// File answers a file location once, within its time: the link's
// contents as the owner may see them now, as compact JWE under the
// link's key. The clinical reads are audited as the link's.
func (ls *Links) File(ctx context.Context, fileID, addr string) (string, error) {
	now := ls.DB.Now().UTC()
	var linkID string
	err := ls.DB.Write(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "UPDATE shl_file SET used_at = ? WHERE id = ? AND used_at IS NULL AND expires > ? RETURNING link_id",
			now.UnixMicro(), fileID, now.UnixMicro()).Scan(&linkID)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNoLink
	}
	if err != nil {
		return "", err
	}
	l, sealed, err := ls.get(ctx, linkID)
	if err != nil || !l.Revoked.IsZero() || (!l.Expires.IsZero() && !now.Before(l.Expires)) {
		return "", ErrNoLink
	}
	key, err := ls.Keys.Open(sealed, keyBinding(linkID))
	if err != nil {
		return "", err
	}
	var types []string
	for _, c := range l.Contents {
		for _, t := range Contents[c] {
			if !slices.Contains(types, t) {
				types = append(types, t)
			}
		}
	}
	// The link acts for its owner: the patient, or a caregiver, whose
	// grant (and the patient's consent) is applied as it stands now.
	p := access.Principal{User: l.CreatedBy, Patient: l.Patient, Address: addr, Client: "shl-" + linkID[:16],
		Link: &access.Link{ID: linkID, Types: types}}
	p.Caregiver = !ls.ownedByPatient(ctx, l)
	b, err := ls.Views.Shared(ctx, clinical.Request{Principal: p}, types)
	if err != nil {
		if apperr.CodeOf(err) == apperr.NotFound || apperr.CodeOf(err) == apperr.Forbidden {
			return "", ErrNoLink // the owner no longer may see the record
		}
		return "", err
	}
	payload, err := json.Marshal(b)
	if err != nil {
		return "", err
	}
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.DIRECT, Key: key},
		(&jose.EncrypterOptions{}).WithContentType("application/fhir+json"))
	if err != nil {
		return "", err
	}
	obj, err := enc.Encrypt(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

// ownedByPatient reports whether the link's maker is the patient (their
// account holds the record) rather than a caregiver.
func (ls *Links) ownedByPatient(ctx context.Context, l *Link) bool {
	var n int
	ls.DB.Read(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT COUNT(*) FROM account WHERE id = ? AND patient_id = ?", strings.TrimPrefix(l.CreatedBy, "Person/"), l.Patient).Scan(&n)
	})
	return n == 1
}

// List returns the links of a patient's record, newest first, with every
// access (the recipient's stated name opened from its seal); with by set,
// only the links that person made (a caregiver sees only their own).
func (ls *Links) List(ctx context.Context, patient, by string) ([]Link, error) {
	var out []Link
	err := ls.DB.Read(ctx, func(tx *sqldb.Tx) error {
		q, args := "SELECT "+linkCols+" FROM shl_link WHERE patient_id = ?", []any{patient}
		if by != "" {
			q += " AND created_by = ?"
			args = append(args, by)
		}
		rows, err := tx.Query(ctx, q+" ORDER BY created DESC, id", args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			l, _, err := scanLink(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, *l)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range out {
			rows, err := tx.Query(ctx, "SELECT at, recipient_sealed FROM shl_access WHERE link_id = ? ORDER BY at DESC", out[i].ID)
			if err != nil {
				return err
			}
			for rows.Next() {
				var at int64
				var sealed []byte
				if err := rows.Scan(&at, &sealed); err != nil {
					rows.Close()
					return err
				}
				who, err := ls.Keys.Open(sealed, seal.Binding{Table: "shl_access", Column: "recipient_sealed", Row: out[i].ID})
				if err != nil {
					who = []byte("?")
				}
				out[i].Accesses = append(out[i].Accesses, Access{At: time.UnixMicro(at).UTC(), Recipient: string(who)})
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// Revoke ends a link of the patient's record now: its manifest and any
// file location answer 404 from the next request. by is who stops it;
// a caregiver (onlyOwn) stops only the links they made.
func (ls *Links) Revoke(ctx context.Context, id, patient, by, addr string, onlyOwn bool) error {
	now := ls.DB.Now().UnixMicro()
	err := ls.DB.Write(ctx, func(tx *sqldb.Tx) error {
		q := "UPDATE shl_link SET revoked_at = ? WHERE id = ? AND patient_id = ? AND revoked_at IS NULL"
		args := []any{now, id, patient}
		if onlyOwn {
			q += " AND created_by = ?"
			args = append(args, by)
		}
		res, err := tx.Exec(ctx, q, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrNoLink
		}
		return ls.stage(ctx, tx, "share-link-revoked", by, patient, addr, onlyOwn)
	})
	if err == nil && ls.Audit != nil {
		ls.Audit.Chain(ctx)
	}
	return err
}

// stage writes a link's change to the audit trail in tx.
func (ls *Links) stage(ctx context.Context, tx *sqldb.Tx, reason, by, patient, addr string, caregiver bool) error {
	if ls.Audit == nil {
		return nil
	}
	rec := audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypePolicyChange},
		Action: audit.Update, Outcome: audit.Success, Reason: reason, User: by, Address: addr, Patient: "Patient/" + patient}
	if caregiver {
		rec.OnBehalf = "Patient/" + patient
	}
	return ls.Audit.Stage(ctx, tx, rec)
}

const linkCols = "id, patient_id, created_by, label, contents, flags, key_sealed, attempts_left, expires, created, revoked_at"

func scanLink(row interface{ Scan(...any) error }) (*Link, []byte, error) {
	var l Link
	var contents string
	var sealed []byte
	var expires, revoked sql.NullInt64
	var created int64
	if err := row.Scan(&l.ID, &l.Patient, &l.CreatedBy, &l.Label, &contents, &l.Flags, &sealed, &l.AttemptsLeft, &expires, &created, &revoked); err != nil {
		return nil, nil, err
	}
	l.Contents = strings.Split(contents, ",")
	l.Created = time.UnixMicro(created).UTC()
	if expires.Valid {
		l.Expires = time.UnixMicro(expires.Int64).UTC()
	}
	if revoked.Valid {
		l.Revoked = time.UnixMicro(revoked.Int64).UTC()
	}
	return &l, sealed, nil
}

func (ls *Links) get(ctx context.Context, id string) (*Link, []byte, error) {
	if len(id) != 43 {
		return nil, nil, ErrNoLink
	}
	var l *Link
	var sealed []byte
	err := ls.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
		var err error
		l, sealed, err = scanLink(tx.QueryRow(ctx, "SELECT "+linkCols+" FROM shl_link WHERE id = ?", id))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, ErrNoLink
	}
	return l, sealed, err
}
