package requests

import (
	"context"
	"log/slog"
	"time"

	"carefront/internal/jobs"
	"carefront/internal/sqldb"
)

// RemindBefore is how long before a correction's deadline the care team
// is first reminded; a second reminder goes when the deadline passes.
const RemindBefore = 14 * 24 * time.Hour

// The PHI-free notices of a correction's deadline to the clinicians who
// care for the patient (identity's notice texts).
const (
	NoticeCorrectionDue     = "request-correction-due"
	NoticeCorrectionOverdue = "request-correction-overdue"
)

// Clinician is a staff account that is a Practitioner of the clinic.
type Clinician struct {
	Account      string
	Practitioner string // "Practitioner/ID"
}

// StaffNotices lists the clinic's clinicians and queues a notice to one
// of them in a transaction (identity.Auth).
type StaffNotices interface {
	Clinicians(ctx context.Context) ([]Clinician, error)
	QueueNotice(ctx context.Context, tx *sqldb.Tx, accountID, event string) error
}

// Cares reports whether a practitioner has a care relationship with a
// patient (clinical.Gateway.CaresFor).
type Cares func(ctx context.Context, practitioner, patient string) (bool, error)

// Reminded is what one run of RemindDeadlines did.
type Reminded struct {
	Corrections int // corrections whose care team was reminded
	Notices     int // notices queued
	// Unassigned are open corrections nearing or past their deadline for
	// whose patient no clinician with an account has a care relationship:
	// nobody could be reminded, and someone must assign them.
	Unassigned []string // Task ids
}

// RemindDeadlines reminds the clinicians who care for each patient of
// their open corrections: once when RemindBefore is left, once when the
// deadline has passed. Each reminder is marked in the transaction that
// queues its notices, with a guard on the mark, so a second run (or a
// second instance) reminds no one twice. The notices name no patient and
// no item; the clinician finds them on the requests page, where the
// deadline is shown.
func (s *Store) RemindDeadlines(ctx context.Context, staff StaffNotices, cares Cares) (Reminded, error) {
	var done Reminded
	now := s.now()
	type open struct {
		id, patient string
		due         int64
		reminded    int
	}
	var list []open
	err := s.DB.Read(ctx, func(tx *sqldb.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, patient_id, due, reminded FROM patient_request
			WHERE kind = ? AND status IN (?, ?) AND due IS NOT NULL AND due <= ? AND reminded < 2 ORDER BY due`,
			Correction, Requested, InProgress, now.Add(RemindBefore).UnixMicro())
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var o open
			if err := rows.Scan(&o.id, &o.patient, &o.due, &o.reminded); err != nil {
				return err
			}
			list = append(list, o)
		}
		return rows.Err()
	})
	if err != nil || len(list) == 0 {
		return done, err
	}
	clinicians, err := staff.Clinicians(ctx)
	if err != nil {
		return done, err
	}
	for _, o := range list {
		stage, event := 1, NoticeCorrectionDue
		if !now.Before(time.UnixMicro(o.due)) {
			stage, event = 2, NoticeCorrectionOverdue
		}
		if o.reminded >= stage {
			continue
		}
		var to []string
		for _, c := range clinicians {
			ok, err := cares(ctx, c.Practitioner, o.patient)
			if err != nil {
				return done, err
			}
			if ok {
				to = append(to, c.Account)
			}
		}
		if len(to) == 0 {
			done.Unassigned = append(done.Unassigned, o.id)
			continue
		}
		err := s.DB.Write(ctx, func(tx *sqldb.Tx) error {
			res, err := tx.Exec(ctx, "UPDATE patient_request SET reminded = ? WHERE id = ? AND reminded < ?", stage, o.id, stage)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				return err // reminded already, by another run
			}
			for _, acct := range to {
				if err := staff.QueueNotice(ctx, tx, acct, event); err != nil {
					return err
				}
			}
			done.Corrections++
			done.Notices += len(to)
			return nil
		})
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// DeadlineArgs is the periodic job that reminds the care team of
// corrections nearing or past their deadline.
type DeadlineArgs struct{}

// Kind names the job.
func (DeadlineArgs) Kind() string { return "correction-deadlines" }

// DeadlineJob is the job queue's handler and its schedule: every six
// hours. A correction nobody could be reminded of is logged by its Task
// id (no PHI) at every run until someone cares for the patient.
func (s *Store) DeadlineJob(log *slog.Logger, staff StaffNotices, cares Cares) (jobs.Handler, jobs.Periodic) {
	return jobs.Handle(func(ctx context.Context, _ jobs.Job, _ DeadlineArgs) error {
		r, err := s.RemindDeadlines(ctx, staff, cares)
		if len(r.Unassigned) > 0 {
			log.Warn("corrections near their deadline with no clinician caring for the patient to remind", "tasks", r.Unassigned)
		}
		return err
	}), jobs.Periodic{Every: 6 * time.Hour, Args: func() jobs.Args { return DeadlineArgs{} }}
}
