package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"carefront/internal/jobs"
	"carefront/internal/sqldb"
)

type bounceArgs struct{}

func (bounceArgs) Kind() string { return "bounce" }

// The operator's view of failed jobs: listed with their last error, and
// retried by id.
func TestJobsListAndRetry(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := dialectEnv(t, dialect)
			dir := env["CAREFRONT_DATA_DIR"]
			ctx := context.Background()
			var out bytes.Buffer
			if err := run(ctx, []string{"carefront", "migrate"}, envOf(env), &out); err != nil {
				t.Fatal(err)
			}
			db, err := sqldb.Open(ctx, sqldb.Options{URL: env["CAREFRONT_DATABASE_URL"], DataDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ran := make(chan struct{}, 10)
			q, err := jobs.New(db, jobs.Options{PollInterval: 20 * time.Millisecond, MaxAttempts: 1},
				jobs.Handle(func(context.Context, jobs.Job, bounceArgs) error {
					ran <- struct{}{}
					return errors.New("smtp RCPT: the server answered 550")
				}))
			if err != nil {
				t.Fatal(err)
			}
			q.Start(ctx)
			defer q.Stop(ctx)
			if err := db.Write(ctx, func(tx *sqldb.Tx) error { _, err := q.EnqueueTx(ctx, tx, bounceArgs{}, nil); return err }); err != nil {
				t.Fatal(err)
			}
			<-ran
			var list string
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(list, "bounce") && time.Now().Before(deadline) {
				out.Reset()
				if err := run(ctx, []string{"carefront", "jobs", "list", "--failed"}, envOf(env), &out); err != nil {
					t.Fatal(err)
				}
				list = out.String()
				time.Sleep(50 * time.Millisecond)
			}
			if !strings.Contains(list, "smtp RCPT: the server answered 550") {
				t.Fatalf("jobs list --failed:\n%s", list)
			}
			id := strings.Fields(strings.Split(list, "\n")[1])[0]
			out.Reset()
			if err := run(ctx, []string{"carefront", "jobs", "retry", id}, envOf(env), &out); err != nil || !strings.Contains(out.String(), "will run again") {
				t.Fatalf("jobs retry %s = %v, %q", id, err, out.String())
			}
			select {
			case <-ran:
			case <-time.After(10 * time.Second):
				t.Fatal("the retried job did not run")
			}
			err = run(ctx, []string{"carefront", "jobs", "retry", "987654"}, envOf(env), &out)
			if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "no job 987654") {
				t.Errorf("retry of an unknown job = %v (exit %d)", err, exitCode(err))
			}
		})
	}
}
