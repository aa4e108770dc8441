package identity_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"carefront/internal/identity"
	"carefront/internal/jobs"
	"carefront/internal/notify"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// The child side of the mail crash test: when these variables are set, the
// test binary runs a mail worker on the given database and nothing else,
// until the armed failpoint kills it.
const (
	childDB     = "CAREFRONT_TEST_CHILD_DB" // data dir | URL | schema
	childKeys   = "CAREFRONT_TEST_CHILD_KEYS"
	childMailTo = "CAREFRONT_TEST_CHILD_MAILFILE"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(childDB); spec != "" {
		runMailChild(spec)
		os.Exit(3) // the failpoint should have killed the process
	}
	os.Exit(m.Run())
}

func runMailChild(spec string) {
	parts := strings.SplitN(spec, "|", 3)
	ctx := context.Background()
	db, err := sqldb.Open(ctx, sqldb.Options{DataDir: parts[0], URL: parts[1], Schema: parts[2], Durable: true})
	if err != nil {
		os.Exit(4)
	}
	k, err := seal.Parse(os.Getenv(childKeys))
	if err != nil {
		os.Exit(5)
	}
	auth := &identity.Auth{Store: identity.NewStore(db, k), Keys: k, Mail: &fileMail{path: os.Getenv(childMailTo)}}
	q, err := jobs.New(db, jobs.Options{PollInterval: 20 * time.Millisecond}, auth.MailHandler())
	if err != nil || q.Start(ctx) != nil {
		os.Exit(6)
	}
	time.Sleep(time.Minute)
}

// fileMail is a mail relay that appends "message-id to" lines to a file and
// syncs it before answering, as a relay accepts a message.
type fileMail struct {
	mu   sync.Mutex
	path string
}

func (f *fileMail) Send(ctx context.Context, m notify.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	notify.NewOutbox(1).Send(ctx, m) // a copy to the suite's notification sink, for the PHI scan
	file, err := os.OpenFile(f.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer file.Close()
	if _, err := file.WriteString(m.MessageID + " " + m.To + "\n"); err != nil {
		return err
	}
	return file.Sync()
}

func delivered(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// A process killed while sending mail loses none and sends none twice that
// the relay had not accepted: killed before the relay took the message, it
// is delivered once after the restart; killed after, it may be delivered
// again, with the same Message-ID. River runs a job again once the dead
// process's run is older than RescueAfter; its rescuer looks every 30s, so
// each case takes about half a minute.
func TestMailSurvivesAKill(t *testing.T) {
	for _, d := range []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres} {
		for _, tc := range []struct {
			failpoint string
			want      int // deliveries in the end
		}{{"mail-before-send", 1}, {"mail-after-send", 2}} {
			t.Run(string(d)+"/"+tc.failpoint, func(t *testing.T) {
				t.Parallel()
				o := sqldbtest.Options(t, d)
				db := sqldbtest.OpenWith(t, o)
				ctx := context.Background()
				k, _ := seal.Generate()
				keys, _ := k.JSON()
				st := identity.NewStore(db, k)
				acct := &identity.Account{Kind: identity.Person, Email: "ana@example.com"}
				if err := st.CreateAccount(ctx, acct); err != nil {
					t.Fatal(err)
				}
				// The request side: a code is made and its mail queued.
				insertOnly, _ := jobs.New(db, jobs.Options{})
				auth := &identity.Auth{Store: st, Keys: k, Jobs: insertOnly, Audit: auditWriter(t, db)}
				if err := auth.SendEmailCode(ctx, acct, "", ""); err != nil {
					t.Fatal(err)
				}
				mailFile := filepath.Join(t.TempDir(), "relay.log")
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), childDB+"="+o.DataDir+"|"+o.URL+"|"+o.Schema, childKeys+"="+keys,
					childMailTo+"="+mailFile, "CAREFRONT_TEST_FAILPOINT="+tc.failpoint)
				out, _ := cmd.CombinedOutput()
				if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
					t.Fatalf("the worker was not killed at %s: %v\n%s", tc.failpoint, cmd.ProcessState, out)
				}
				before := delivered(t, mailFile)
				if want := tc.want - 1; len(before) != want {
					t.Fatalf("delivered before the restart: %v, want %d", before, want)
				}
				// A restarted instance takes the job over.
				auth.Mail = &fileMail{path: mailFile}
				q, err := jobs.New(db, jobs.Options{PollInterval: 20 * time.Millisecond, JobTimeout: time.Second, RescueAfter: 2 * time.Second}, auth.MailHandler())
				if err != nil {
					t.Fatal(err)
				}
				q.Start(ctx)
				defer q.Stop(ctx)
				deadline := time.Now().Add(90 * time.Second)
				for len(delivered(t, mailFile)) < tc.want && time.Now().Before(deadline) {
					time.Sleep(100 * time.Millisecond)
				}
				time.Sleep(500 * time.Millisecond) // and no more than that
				got := delivered(t, mailFile)
				if len(got) != tc.want {
					t.Fatalf("delivered %v, want %d deliveries", got, tc.want)
				}
				for _, line := range got {
					if line != got[0] || !strings.HasSuffix(line, " ana@example.com") || len(strings.Fields(line)[0]) != 32 {
						t.Errorf("deliveries %v: want one Message-ID to ana@example.com", got)
					}
				}
			})
		}
	}
}
