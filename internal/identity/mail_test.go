package identity_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"carefront/internal/identity"
	"carefront/internal/jobs"
	"carefront/internal/notify"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
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

// TestSharingNoticesReachTheirPeople: a notice queued for a patient goes
// to the account of their own record, in both languages and naming no
// one; a patient without an account is not written to, and an unknown
// notice is refused.
func TestSharingNoticesReachTheirPeople(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s, _, maria := setup(t, db)
		auth := &identity.Auth{Store: s}
		outbox := withMail(t, db, auth)
		ctx := context.Background()
		parent := &identity.Account{Kind: identity.Person, Email: "rosa@example.com"}
		if err := s.CreateAccount(ctx, parent); err != nil {
			t.Fatal(err)
		}
		if err := db.Write(ctx, func(tx *sqldb.Tx) error {
			if err := auth.QueuePatientNotice(ctx, tx, maria.PatientID, "sharing-ends-adult-patient"); err != nil {
				return err
			}
			if err := auth.QueuePatientNotice(ctx, tx, "no-account", "sharing-ends-adult-patient"); err != nil {
				return err
			}
			return auth.QueueNotice(ctx, tx, parent.ID, "sharing-ends-adult-caregiver")
		}); err != nil {
			t.Fatal(err)
		}
		msgs := settle(t, db, outbox)
		to := map[string]string{}
		for _, m := range msgs {
			to[m.To] = m.Subject + "\n" + m.Text
		}
		if len(msgs) != 2 || !strings.Contains(to["maria.ortega@example.com"], "you come of age") || !strings.Contains(to["rosa@example.com"], "ends within the next 30 days") {
			t.Fatalf("notices: %v", to)
		}
		for addr, text := range to {
			if !strings.Contains(text, "expediente") || strings.Contains(text, "Maria") || strings.Contains(text, "demo-maria") {
				t.Errorf("the notice to %s is not in both languages or names the patient:\n%s", addr, text)
			}
		}
		if err := db.Write(ctx, func(tx *sqldb.Tx) error { return auth.QueueNotice(ctx, tx, parent.ID, "no-such-notice") }); err == nil {
			t.Error("an unknown notice was queued")
		}
	})
}
