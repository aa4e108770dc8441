package appointments

import (
	"context"
	"slices"
	"strings"
	"time"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/clinical"
	"carefront/internal/jobs"
	"carefront/internal/sqldb"
)

// Reminders go a day and an hour before a visit.
var reminderLeads = []time.Duration{24 * time.Hour, time.Hour}

// ReminderArgs is the job that reminds a patient of a visit. It names the
// visit and the start it was booked for: a visit moved since has its own
// reminders, and one cancelled has none, so the job then sends nothing.
type ReminderArgs struct {
	Appointment string `json:"appointment"`
	Start       int64  `json:"start"` // Unix seconds
	Lead        string `json:"lead"`  // "24h0m0s" or "1h0m0s"
}

// Kind names the job.
func (ReminderArgs) Kind() string { return "visit-reminder" }

// remind enqueues the visit's reminders in tx: unique jobs, so that a
// retried transaction or a second instance never makes two.
func (s *Store) remind(ctx context.Context, tx *sqldb.Tx, a *Appointment, now time.Time) error {
	if s.Jobs == nil {
		return nil
	}
	for _, lead := range reminderLeads {
		at := a.Start.Add(-lead)
		if !at.After(now) {
			continue // booked too close to the visit for this one
		}
		args := ReminderArgs{Appointment: a.ID, Start: a.Start.Unix(), Lead: lead.String()}
		if _, err := s.Jobs.EnqueueTx(ctx, tx, args, &jobs.EnqueueOptions{At: at, UniqueFor: 24 * time.Hour}); err != nil {
			return err
		}
	}
	return nil
}

// caregiversOf returns the accounts of the caregivers who may see the
// visit now: each holder of a grant to the patient's record, asked
// through the gateway as that caregiver (their grant's kinds, its end,
// the age policy and sensitivity labels all apply, and the read is
// audited with them, as the reminder discloses the visit to them).
func (s *Store) caregiversOf(ctx context.Context, a *Appointment) ([]string, error) {
	if s.Caregivers == nil || s.Gateway == nil {
		return nil, nil
	}
	users, err := s.Caregivers(ctx, a.Patient)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, user := range users {
		acct, ok := strings.CutPrefix(user, "Person/")
		if !ok || slices.Contains(out, acct) {
			continue
		}
		req := clinical.Request{Principal: access.Principal{User: user, Patient: a.Patient, Caregiver: true}, RequestID: "visit-reminder"}
		_, err := s.Gateway.Read(ctx, req, "Appointment", a.ID)
		switch apperr.CodeOf(err) {
		case "":
			out = append(out, acct)
		case apperr.NotFound, apperr.Forbidden, apperr.Gone:
			// not theirs to see (any more)
		default:
			return nil, err
		}
	}
	return out, nil
}

// ReminderHandler is the job handler that sends the reminders.
func (s *Store) ReminderHandler() jobs.Handler { return jobs.Handle(s.sendReminder) }

func (s *Store) sendReminder(ctx context.Context, _ jobs.Job, args ReminderArgs) error {
	if s.Reminders == nil {
		return nil
	}
	r, err := s.FHIR.Read(ctx, "Appointment", args.Appointment)
	if c := apperr.CodeOf(err); c == apperr.NotFound || c == apperr.Gone {
		return nil
	}
	if err != nil {
		return err
	}
	a, err := s.appointment(ctx, r)
	if err != nil {
		return err
	}
	if a.Status != "booked" || a.Start.Unix() != args.Start || a.Patient == "" {
		return nil // cancelled or moved: this reminder is for a time no longer booked
	}
	clinic := a.Clinic // "" when unknown: the notice says "your clinic" (a place's name can be a department's)
	// A run after the reminder was queued (a crash before the job was
	// marked done) stops here, before asking, and auditing, as each
	// caregiver; the guard in the transaction below settles a race.
	var sent int
	if err := s.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT COUNT(*) FROM visit_reminder_sent WHERE appointment_id = ? AND starts = ? AND lead = ?",
			a.ID, args.Start, args.Lead).Scan(&sent)
	}); err != nil || sent > 0 {
		return err
	}
	caregivers, err := s.caregiversOf(ctx, a)
	if err != nil {
		return err
	}
	err = s.DB.Write(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, "INSERT INTO visit_reminder_sent (appointment_id, starts, lead, sent) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
			a.ID, args.Start, args.Lead, s.now().UnixMicro())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err // queued by an earlier run of this job
		}
		if err := s.Reminders.QueueVisitReminder(ctx, tx, a.Patient, a.Start, clinic); err != nil {
			return err
		}
		for _, acct := range caregivers {
			if err := s.Reminders.QueueVisitReminderTo(ctx, tx, acct, a.Start, clinic); err != nil {
				return err
			}
		}
		// The reminder read the visit for the patient: on their trail.
		return s.Audit.Stage(ctx, tx, audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypeRead},
			Action: audit.Read, Outcome: audit.Success, Reason: "visit-reminder", Patient: "Patient/" + a.Patient,
			Entities: []audit.Entity{{What: "Appointment/" + a.ID}}})
	})
	if err != nil {
		return err
	}
	s.Audit.Chain(ctx)
	return nil
}
