package appointments

import (
	"context"

	"carefront/internal/jobs"
)

// SendReminder runs the reminder job's work once.
func (s *Store) SendReminder(ctx context.Context, args ReminderArgs) error {
	return s.sendReminder(ctx, jobs.Job{Attempt: 1}, args)
}
