package telehealth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
)

// MaxGuests is how many guests a visit may have: with the patient and
// the clinician, the embedded mesh's four.
const MaxGuests = 2

// GuestMailer queues a guest's invitation (identity.Auth).
type GuestMailer interface {
	QueueVisitGuest(ctx context.Context, tx *sqldb.Tx, to, link string, at time.Time) error
}

// Guests invites people without a portal account to one video visit:
// an interpreter, a family member. A guest's link works once, until the
// visit's join window closes; it gives their browser a session for that
// visit alone. Guests always wait until the clinician lets them in, and
// see nothing of the record.
type Guests struct {
	DB    *sqldb.DB
	Seal  *seal.Keys
	Audit *audit.Writer
	Mail  GuestMailer
	// Link makes the link a code is sent in.
	Link func(code string) string
}

// Guest is an invited guest.
type Guest struct {
	ID          string
	Appointment string
	Patient     string
	Name        string
	Starts      time.Time // the visit's start: all a guest learns of it
	Expires     time.Time
}

// Participant is the guest as a visit names them.
func (g *Guest) Participant() string { return "Guest/" + g.ID }

// GuestVisit is the visit a guest is invited to.
type GuestVisit struct {
	Appointment, Patient string
	Start, Closes        time.Time // when it starts; when joining closes
}

// ErrGuestLink is every guest link that cannot be used: unknown, used
// already, or past the visit. One answer for all.
var ErrGuestLink = apperr.New(apperr.Gone, "this guest link was used already or the visit is over; ask the person who invited you for a new one")

func hashCode(code string) string {
	h := sha256.Sum256([]byte(code))
	return hex.EncodeToString(h[:])
}

func (gs *Guests) nameBinding(id string) seal.Binding {
	return seal.Binding{Table: "visit_guest", Column: "name_sealed", Row: id}
}

func guestError(field, key, msg string) error {
	return apperr.NewField(apperr.Invalid, field, "guest."+key, "%s", msg)
}

// Invite invites a guest by name and address, for by ("Person/ID"), and
// queues the email with the link in the same transaction.
func (gs *Guests) Invite(ctx context.Context, v GuestVisit, name, email, by, addr string) (*Guest, error) {
	name = strings.TrimSpace(name)
	email = strings.TrimSpace(email)
	if name == "" || utf8.RuneCountInString(name) > 100 || !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) {
		return nil, guestError("guest-name", "name.error", "give the guest's name, up to 100 characters")
	}
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email || len(email) > 254 {
		return nil, guestError("guest-email", "email.error", "give the guest's email address, like name@example.com")
	}
	now := gs.DB.Now()
	if !now.Before(v.Closes) {
		return nil, guestError("", "over", "this visit is over")
	}
	var idb, codeb [16]byte
	rand.Read(idb[:])
	rand.Read(codeb[:])
	g := &Guest{ID: hex.EncodeToString(idb[:]), Appointment: v.Appointment, Patient: v.Patient, Name: name, Starts: v.Start, Expires: v.Closes}
	code := base64.RawURLEncoding.EncodeToString(codeb[:])
	sealed, err := gs.Seal.Seal([]byte(name), gs.nameBinding(g.ID))
	if err != nil {
		return nil, err
	}
	err = gs.DB.Write(ctx, func(tx *sqldb.Tx) error {
		if tx.Dialect() == sqldb.Postgres {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('visit-guest:' || ?, 0))", v.Appointment); err != nil {
				return err
			}
		}
		var n int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM visit_guest WHERE appointment = ?", v.Appointment).Scan(&n); err != nil {
			return err
		}
		if n >= MaxGuests {
			return guestError("", "too-many", "a visit can have two guests")
		}
		if _, err := tx.Exec(ctx, `INSERT INTO visit_guest (id, appointment, patient, name_sealed, code_hash, invited_by, created, starts, expires)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, g.ID, v.Appointment, v.Patient, sealed, hashCode(code), by, now.UnixMicro(), v.Start.UnixMicro(), v.Closes.UnixMicro()); err != nil {
			return err
		}
		if gs.Mail != nil {
			if err := gs.Mail.QueueVisitGuest(ctx, tx, email, gs.Link(code), v.Start); err != nil {
				return err
			}
		}
		return gs.Audit.Stage(ctx, tx, audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{SubtypeVideoVisit, EventCoding("guest-invite")},
			Action: audit.Create, Outcome: audit.Success, User: by, Address: addr, Patient: "Patient/" + v.Patient,
			Entities: []audit.Entity{{What: "Appointment/" + v.Appointment}, {What: g.Participant()}}})
	})
	if err != nil {
		return nil, err
	}
	gs.Audit.Chain(ctx)
	return g, nil
}

// Redeem spends a guest link: once, before the visit's window closes.
// It returns the guest and the session their browser keeps.
func (gs *Guests) Redeem(ctx context.Context, code, addr string) (*Guest, string, error) {
	var sb [24]byte
	rand.Read(sb[:])
	session := base64.RawURLEncoding.EncodeToString(sb[:])
	now := gs.DB.Now()
	var g *Guest
	var reason string
	err := gs.DB.Write(ctx, func(tx *sqldb.Tx) error {
		var id string
		var used, expires int64
		err := tx.QueryRow(ctx, "SELECT id, used, expires FROM visit_guest WHERE code_hash = ?", hashCode(code)).Scan(&id, &used, &expires)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			reason = "guest-link-unknown"
			return nil
		case err != nil:
			return err
		case used != 0:
			reason = "guest-link-used"
		case expires <= now.UnixMicro():
			reason = "guest-link-expired"
		}
		if reason == "" {
			res, err := tx.Exec(ctx, "UPDATE visit_guest SET used = ?, session_hash = ? WHERE id = ? AND used = 0", now.UnixMicro(), hashCode(session), id)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				reason = "guest-link-used"
			}
		}
		if g, err = gs.read(ctx, tx, "id", id); err != nil {
			return err
		}
		rec := audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{SubtypeVideoVisit, EventCoding("guest-link")},
			Action: audit.Execute, Outcome: audit.Success, User: g.Participant(), Address: addr, Patient: "Patient/" + g.Patient,
			Entities: []audit.Entity{{What: "Appointment/" + g.Appointment}}}
		if reason != "" {
			rec.Outcome, rec.Reason = audit.MinorFailure, reason
		}
		return gs.Audit.Stage(ctx, tx, rec)
	})
	if err != nil {
		return nil, "", err
	}
	gs.Audit.Chain(ctx)
	if reason != "" {
		return nil, "", ErrGuestLink
	}
	return g, session, nil
}

// BySession is the guest whose browser holds session, while their
// visit's window is open.
func (gs *Guests) BySession(ctx context.Context, session string) (*Guest, error) {
	if session == "" {
		return nil, ErrGuestLink
	}
	var g *Guest
	err := gs.DB.Read(ctx, func(tx *sqldb.Tx) error {
		var err error
		g, err = gs.read(ctx, tx, "session_hash", hashCode(session))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !gs.DB.Now().Before(g.Expires)) {
		return nil, ErrGuestLink
	}
	return g, err
}

func (gs *Guests) read(ctx context.Context, tx *sqldb.Tx, column, value string) (*Guest, error) {
	g := &Guest{}
	var sealed []byte
	var starts, expires int64
	err := tx.QueryRow(ctx, "SELECT id, appointment, patient, name_sealed, starts, expires FROM visit_guest WHERE "+column+" = ?", value).
		Scan(&g.ID, &g.Appointment, &g.Patient, &sealed, &starts, &expires)
	if err != nil {
		return nil, err
	}
	name, err := gs.Seal.Open(sealed, gs.nameBinding(g.ID))
	if err != nil {
		return nil, err
	}
	g.Name, g.Starts, g.Expires = string(name), time.UnixMicro(starts).UTC(), time.UnixMicro(expires).UTC()
	return g, nil
}
