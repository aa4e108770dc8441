package jobs_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"carefront/internal/jobs"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

type pingArgs struct {
	Ref  string `json:"ref"`
	Fail bool   `json:"fail,omitempty"`
	// Wait makes the first run ask to run again later (jobs.Later).
	Wait bool `json:"wait,omitempty"`
}

func (pingArgs) Kind() string { return "ping" }

// recorder is a handler that remembers what it ran.
type recorder struct {
	mu   sync.Mutex
	runs map[string][]int // ref -> attempts seen
	at   map[string][]time.Time
}

func (r *recorder) handler() jobs.Handler {
	return jobs.Handle(func(_ context.Context, j jobs.Job, a pingArgs) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.runs[a.Ref] = append(r.runs[a.Ref], j.Attempt)
		r.at[a.Ref] = append(r.at[a.Ref], time.Now())
		if a.Wait && len(r.runs[a.Ref]) == 1 {
			return jobs.Later(500 * time.Millisecond)
		}
		if a.Fail {
			return errors.New("relay answered 451")
		}
		return nil
	})
}

func (r *recorder) attempts(ref string) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.runs[ref]...)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func enqueue(t *testing.T, db *sqldb.DB, q *jobs.Queue, a pingArgs, o *jobs.EnqueueOptions, fail error) (bool, error) {
	t.Helper()
	var added bool
	err := db.Write(context.Background(), func(tx *sqldb.Tx) error {
		var err error
		if added, err = q.EnqueueTx(context.Background(), tx, a, o); err != nil {
			return err
		}
		return fail
	})
	return added, err
}

func TestJobsRunOnlyWhenTheirTransactionCommits(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		rec := &recorder{runs: map[string][]int{}, at: map[string][]time.Time{}}
		q, err := jobs.New(db, jobs.Options{PollInterval: 20 * time.Millisecond}, rec.handler())
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer q.Stop(ctx)
		if _, err := enqueue(t, db, q, pingArgs{Ref: "committed"}, nil, nil); err != nil {
			t.Fatal(err)
		}
		rollback := errors.New("the change failed")
		if _, err := enqueue(t, db, q, pingArgs{Ref: "rolled-back"}, nil, rollback); !errors.Is(err, rollback) {
			t.Fatalf("Write = %v", err)
		}
		waitFor(t, "the committed job", func() bool { return len(rec.attempts("committed")) == 1 })
		time.Sleep(300 * time.Millisecond)
		if n := rec.attempts("rolled-back"); len(n) != 0 {
			t.Errorf("a job of a rolled-back transaction ran %d times", len(n))
		}
		if n := rec.attempts("committed"); len(n) != 1 {
			t.Errorf("the committed job ran %d times, want once", len(n))
		}
	})
}

func TestFailedJobsAreKeptAndCanBeRetried(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		rec := &recorder{runs: map[string][]int{}, at: map[string][]time.Time{}}
		q, err := jobs.New(db, jobs.Options{PollInterval: 20 * time.Millisecond, MaxAttempts: 2}, rec.handler())
		if err != nil {
			t.Fatal(err)
		}
		q.Start(ctx)
		defer q.Stop(ctx)
		if _, err := enqueue(t, db, q, pingArgs{Ref: "bounce", Fail: true}, nil, nil); err != nil {
			t.Fatal(err)
		}
		// The second attempt comes after River's backoff (1s after the first).
		var failed []jobs.Failed
		waitFor(t, "the job to be kept as failed", func() bool {
			failed, err = q.ListFailed(ctx, 10)
			return err == nil && len(failed) == 1
		})
		if got := rec.attempts("bounce"); len(got) != 2 || got[0] != 1 || got[1] != 2 {
			t.Errorf("attempts = %v, want [1 2]", got)
		}
		f := failed[0]
		if f.Kind != "ping" || f.Attempts != 2 || f.LastError != "relay answered 451" || f.FailedAt.IsZero() {
			t.Errorf("failed job = %+v", f)
		}
		// An operator's retry runs it once more.
		if err := q.Retry(ctx, f.ID); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the retried run", func() bool { return len(rec.attempts("bounce")) == 3 })
		if err := q.Retry(ctx, 999999); !errors.Is(err, jobs.ErrNoJob) {
			t.Errorf("Retry(unknown) = %v, want ErrNoJob", err)
		}
	})
}

func TestUniqueJobsAreNotEnqueuedTwice(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		q, err := jobs.New(db, jobs.Options{}) // enqueue only
		if err != nil {
			t.Fatal(err)
		}
		o := &jobs.EnqueueOptions{UniqueFor: time.Hour}
		for i, want := range []bool{true, false} {
			added, err := enqueue(t, db, q, pingArgs{Ref: "reminder-appt-1"}, o, nil)
			if err != nil || added != want {
				t.Errorf("enqueue %d = %v, %v; want added=%v", i, added, err, want)
			}
		}
		if added, err := enqueue(t, db, q, pingArgs{Ref: "reminder-appt-2"}, o, nil); err != nil || !added {
			t.Errorf("another reminder = %v, %v; want added", added, err)
		}
	})
}

// TestPeriodicJobsRunOnStartAndOnSchedule: a periodic job is enqueued
// when the queue starts and again each period, and run by its handler.
func TestPeriodicJobsRunOnStartAndOnSchedule(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		rec := &recorder{runs: map[string][]int{}, at: map[string][]time.Time{}}
		q, err := jobs.New(db, jobs.Options{PollInterval: 20 * time.Millisecond,
			Periodic: []jobs.Periodic{{Every: 300 * time.Millisecond, Args: func() jobs.Args { return pingArgs{Ref: "tick"} }}}}, rec.handler())
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Stop(context.Background()) })
		waitFor(t, "the job at start and two more", func() bool { return len(rec.attempts("tick")) >= 3 })
	})
}

// TestScheduledAndDeferredJobs: a job enqueued with At does not run
// before then; a job that asks to run later (a notice in quiet hours) runs
// again without spending an attempt.
func TestScheduledAndDeferredJobs(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		rec := &recorder{runs: map[string][]int{}, at: map[string][]time.Time{}}
		q, err := jobs.New(db, jobs.Options{PollInterval: 20 * time.Millisecond, MaxAttempts: 1}, rec.handler())
		if err != nil {
			t.Fatal(err)
		}
		q.Start(ctx)
		defer q.Stop(ctx)
		at := time.Now().Add(time.Second)
		if _, err := enqueue(t, db, q, pingArgs{Ref: "reminder"}, &jobs.EnqueueOptions{At: at}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := enqueue(t, db, q, pingArgs{Ref: "quiet", Wait: true}, nil, nil); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the scheduled job", func() bool { return len(rec.attempts("reminder")) == 1 })
		waitFor(t, "the deferred job's second run", func() bool { return len(rec.attempts("quiet")) == 2 })
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if ran := rec.at["reminder"][0]; ran.Before(at) {
			t.Errorf("the scheduled job ran %v before its time", at.Sub(ran))
		}
		if q := rec.at["quiet"]; q[1].Sub(q[0]) < 500*time.Millisecond {
			t.Errorf("the deferred job ran again after %v, want at least 500ms", q[1].Sub(q[0]))
		}
		// With MaxAttempts 1, a deferral that spent the attempt would leave
		// the job failed instead of run again, at attempt 1.
		if got := rec.runs["quiet"]; got[0] != 1 || got[1] != 1 {
			t.Errorf("deferred job attempts = %v, want [1 1]", got)
		}
		if failed, _ := q.ListFailed(ctx, 10); len(failed) != 0 {
			t.Errorf("failed jobs: %+v", failed)
		}
	})
}
