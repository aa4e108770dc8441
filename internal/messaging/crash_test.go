package messaging_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"carefront/internal/access"
	"carefront/internal/audit"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/identity"
	"carefront/internal/jobs"
	"carefront/internal/messaging"
	"carefront/internal/notify"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// The child side of the crash test: with these set, the test binary sends
// one message on the given database, with its notices queued as serve
// queues them, and the armed failpoint kills it right after the commit.
const (
	childDB   = "CAREFRONT_TEST_CHILD_DB" // data dir | URL | schema
	childKeys = "CAREFRONT_TEST_CHILD_KEYS"
	childPool = "CAREFRONT_TEST_CHILD_POOL"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(childDB); spec != "" {
		os.Exit(sendAsChild(spec))
	}
	os.Exit(m.Run())
}

func sendAsChild(spec string) int {
	parts := strings.SplitN(spec, "|", 3)
	ctx := context.Background()
	db, err := sqldb.Open(ctx, sqldb.Options{DataDir: parts[0], URL: parts[1], Schema: parts[2], Durable: true})
	if err != nil {
		return 4
	}
	k, err := seal.Parse(os.Getenv(childKeys))
	if err != nil {
		return 5
	}
	sig, _ := audit.NewSigner(make([]byte, 32))
	aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "child"})
	insertOnly, err := jobs.New(db, jobs.Options{})
	if err != nil {
		return 6
	}
	auth := &identity.Auth{Store: identity.NewStore(db, k), Keys: k, Jobs: insertOnly, Audit: aw}
	s := &messaging.Store{DB: db, Keys: k, Audit: aw, Notices: auth}
	gw := &clinical.Gateway{Source: store.New(db), Audit: aw, Policies: &access.Store{DB: db}}
	pool := messaging.Pool{ID: os.Getenv(childPool), Name: "Dr. Rivera's team"}
	maria := clinical.Request{Principal: access.Principal{User: "Patient/maria", Patient: "maria"}}
	if _, err := s.Start(ctx, gw, maria, messaging.Author{Account: "acct-maria", Kind: messaging.ByPatient}, []messaging.Pool{pool}, pool.ID, "Knee", "It hurts."); err != nil {
		return 7
	}
	return 3 // the failpoint should have killed the process
}

// TestNoticeSurvivesAKillAfterTheMessage: a process killed right after a
// message's commit, before anything else ran, loses neither the message nor
// its notice: the next instance sends the pool's member exactly one notice,
// with no PHI.
func TestNoticeSurvivesAKillAfterTheMessage(t *testing.T) {
	for _, d := range []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			o := sqldbtest.Options(t, d)
			db := sqldbtest.OpenWith(t, o)
			ctx := context.Background()
			f := newFixture(t, db) // accounts, pools, members
			keys, _ := f.s.Keys.JSON()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childDB+"="+o.DataDir+"|"+o.URL+"|"+o.Schema, childKeys+"="+keys,
				childPool+"="+f.rivera.ID, "CAREFRONT_TEST_FAILPOINT=message-after-commit")
			out, _ := cmd.CombinedOutput()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("the sender was not killed after the commit: %v\n%s", cmd.ProcessState, out)
			}
			var n int
			if err := db.RawWriter().QueryRow("SELECT COUNT(*) FROM message").Scan(&n); err != nil || n != 1 {
				t.Fatalf("%d messages after the kill (%v), want 1", n, err)
			}
			// The next instance runs the queued notice.
			mail := notify.NewOutbox(100) // copies to the suite's notification sink too
			auth := &identity.Auth{Store: identity.NewStore(db, f.s.Keys), Keys: f.s.Keys, Mail: mail, Audit: f.s.Audit}
			q, err := jobs.New(db, jobs.Options{PollInterval: 20 * time.Millisecond}, auth.MailHandler())
			if err != nil {
				t.Fatal(err)
			}
			if err := q.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { q.Stop(context.Background()) })
			deadline := time.Now().Add(20 * time.Second)
			for len(mail.Messages()) == 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(500 * time.Millisecond) // a second delivery would show by now
			sent := mail.Messages()
			if len(sent) != 1 || sent[0].To != "rivera@clinic.example" || !strings.Contains(sent[0].Subject, "A new message is waiting") {
				t.Fatalf("notices after the restart = %+v, want one to Dr. Rivera", sent)
			}
			for _, phi := range []string{"Knee", "hurts", "maria", "Maria"} {
				if strings.Contains(sent[0].Subject+sent[0].Text, phi) {
					t.Errorf("the notice carries %q", phi)
				}
			}
		})
	}
}
