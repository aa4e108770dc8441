package consent

import (
	"context"
	"fmt"
	"time"

	"carefront/internal/access"
	"carefront/internal/jobs"
	"carefront/internal/sqldb"
)

// AdultNoticeDays is how long before a parent's grant ends at the
// patient's coming of age both are told.
const AdultNoticeDays = 30

// Notices of a parent's grant ending at the patient's coming of age
// (identity's notice texts: no name, no PHI).
const (
	NoticeAdultCaregiver = "sharing-ends-adult-caregiver"
	NoticeAdultPatient   = "sharing-ends-adult-patient"
)

// NoticeComingOfAge tells the caregiver and the patient (when the patient
// has an account) of each parent's grant that the patient's coming of
// age ends within AdultNoticeDays, before its own last day. Each grant's
// notices are queued once, in the transaction that marks it told, so
// several carefront processes running it at once never send two. It
// returns how many grants it told of.
func (s *Grants) NoticeComingOfAge(ctx context.Context) (int, error) {
	if s.Mail == nil {
		return 0, nil
	}
	now := s.DB.Now().UTC()
	horizon := now.AddDate(0, 0, AdultNoticeDays)
	adultAge := s.Ages.Adult
	if adultAge <= 0 {
		adultAge = access.DefaultAdultAge
	}
	// Only patients born within the window (a day either side) can come
	// of age in it: the scan reads those grants, not every parent's.
	bornFrom, bornTo := now.AddDate(-adultAge, 0, -1), horizon.AddDate(-adultAge, 0, 1)
	told := 0
	err := s.DB.Write(ctx, func(tx *sqldb.Tx) error {
		told = 0
		gs, err := s.scan(ctx, tx, `WHERE revoked_at IS NULL AND accepted_at IS NOT NULL AND caregiver_account IS NOT NULL AND adult_notice_at IS NULL
			AND until_at > ? AND patient_birth >= ? AND patient_birth <= ? ORDER BY patient_id, id`,
			now.UnixMicro(), bornFrom.UnixMicro(), bornTo.UnixMicro())
		if err != nil {
			return err
		}
		toldPatient := map[string]bool{} // a child with two parents gets one notice
		for _, g := range gs {
			adult, ok := g.Proxy().ComesOfAge()
			if !ok || !adult.After(now) || adult.After(horizon) || !adult.Before(g.Until) {
				continue
			}
			res, err := tx.Exec(ctx, "UPDATE proxy_grant SET adult_notice_at = ? WHERE id = ? AND adult_notice_at IS NULL AND revoked_at IS NULL", now.UnixMicro(), g.ID)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				if err != nil {
					return err
				}
				continue
			}
			if err := s.Mail.QueueNotice(ctx, tx, g.Account, NoticeAdultCaregiver); err != nil {
				return err
			}
			if !toldPatient[g.Patient] {
				toldPatient[g.Patient] = true
				if err := s.Mail.QueuePatientNotice(ctx, tx, g.Patient, NoticeAdultPatient); err != nil {
					return err
				}
			}
			told++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("consent: coming-of-age notices: %w", err)
	}
	return told, nil
}

// ComingOfAgeArgs is the hourly job that sends the coming-of-age notices.
type ComingOfAgeArgs struct{}

// Kind names the job.
func (ComingOfAgeArgs) Kind() string { return "coming-of-age-notices" }

// ComingOfAgeJob is the job queue's handler and its schedule: every
// hour (a notice goes at most an hour after its day begins), and once at
// start.
func (s *Grants) ComingOfAgeJob() (jobs.Handler, jobs.Periodic) {
	return jobs.Handle(func(ctx context.Context, _ jobs.Job, _ ComingOfAgeArgs) error {
		_, err := s.NoticeComingOfAge(ctx)
		return err
	}), jobs.Periodic{Every: time.Hour, Args: func() jobs.Args { return ComingOfAgeArgs{} }}
}
