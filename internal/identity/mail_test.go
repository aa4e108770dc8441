package identity_test

import (
	"context"
	"testing"
	"time"

	"carefront/internal/identity"
	"carefront/internal/jobs"
	"carefront/internal/notify"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
)

// withMail gives auth a job queue whose mail lands in the returned outbox.
func withMail(t *testing.T, db *sqldb.DB, auth *identity.Auth) *notify.Outbox {
	t.Helper()
	outbox := notify.NewOutbox(50)
	k, err := seal.Generate()
	if err != nil {
		t.Fatal(err)
	}
	auth.Mail, auth.Keys = outbox, k
	q, err := jobs.New(db, jobs.Options{PollInterval: 10 * time.Millisecond}, auth.MailHandler())
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Stop(context.Background()) })
	auth.Jobs = q
	return outbox
}

// settle waits until every queued job has run and returns the outbox,
// newest first.
func settle(t *testing.T, db *sqldb.DB, outbox *notify.Outbox) []notify.Message {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		pending, err := jobs.Pending(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			return outbox.Messages()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs still queued", pending)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
