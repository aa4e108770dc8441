// Package jobs is carefront's durable job queue, on River
// (github.com/riverqueue/river): everything that happens later or may fail
// and be tried again (mail, reminders, retries) is a job, enqueued in the
// database transaction of the change that causes it, so nothing is sent for
// a rolled-back change and nothing is lost in a crash. Any carefront
// instance on the same database runs any job.
//
// Jobs carry ids, never PHI or contact details; a secret a job must deliver
// (a sign-in code, a reset link) is sealed (package seal) inside its
// arguments. Finished jobs are deleted within minutes; jobs that failed
// every attempt stay, as failed, until an operator retries them (carefront
// jobs list --failed, carefront jobs retry ID) or for a week.
//
// Nothing slow runs inside a caller's transaction: enqueueing is one insert.
package jobs

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"

	"carefront/internal/sqldb"
)

// Args is what a job carries. Kind names the job's handler; the value is
// stored as JSON and must hold ids and sealed secrets only.
type Args interface {
	Kind() string
}

// Job tells a handler which run of which job it is doing.
type Job struct {
	ID          int64
	Attempt     int // 1 on the first run
	MaxAttempts int
}

// Handler runs the jobs of one kind; make one with Handle.
type Handler struct {
	kind     string
	register func(*river.Workers) error
}

// Handle makes the handler of jobs of T's kind. work's error makes the job
// run again later, with growing pauses, until its attempts are spent; then
// it is kept as failed.
func Handle[T Args](work func(ctx context.Context, job Job, args T) error) Handler {
	var zero T
	return Handler{kind: zero.Kind(), register: func(w *river.Workers) error {
		return river.AddWorkerSafely(w, &worker[T]{work: work})
	}}
}

type worker[T Args] struct {
	river.WorkerDefaults[riverArgs[T]]
	work func(ctx context.Context, job Job, args T) error
}

func (w *worker[T]) Work(ctx context.Context, j *river.Job[riverArgs[T]]) error {
	return w.work(ctx, Job{ID: j.ID, Attempt: j.Attempt, MaxAttempts: j.MaxAttempts}, j.Args.Args)
}

// riverArgs adapts Args to River's JobArgs, keeping River's types out of
// the packages that define jobs.
type riverArgs[T Args] struct{ Args T }

func (a riverArgs[T]) Kind() string                 { return a.Args.Kind() }
func (a riverArgs[T]) MarshalJSON() ([]byte, error) { return json.Marshal(a.Args) }
func (a *riverArgs[T]) UnmarshalJSON(b []byte) error {
	return json.Unmarshal(b, &a.Args)
}

// Options configure a Queue.
type Options struct {
	Logger *slog.Logger
	// Workers is how many jobs this instance runs at once (default 4).
	Workers int
	// PollInterval is how often an idle instance looks for new jobs
	// (default 200ms).
	PollInterval time.Duration
	// JobTimeout bounds one run of a job (default 1 minute).
	JobTimeout time.Duration
	// RescueAfter is how long a job may stay running before it is taken to
	// belong to an instance that died, and is run again (default 2
	// minutes; more than JobTimeout).
	RescueAfter time.Duration
	// MaxAttempts is how often a job runs before it is kept as failed
	// (default 8: the pauses grow as attempt^4 seconds, about 80 minutes
	// in all).
	MaxAttempts int
	// Periodic jobs are enqueued on a schedule, by one instance at a time
	// (River's elected leader), and once when that instance starts; their
	// handlers must be among the queue's.
	Periodic []Periodic
}

// Periodic is a job enqueued every Every. The work it does must be safe
// to run twice (a new leader enqueues it at once).
type Periodic struct {
	Every time.Duration
	Args  func() Args
}

// Queue enqueues jobs and, once started, runs those it has handlers for.
type Queue struct {
	client *river.Client[*sql.Tx]
	runs   bool
}

// New opens the queue on db. With no handlers it can enqueue, list and
// retry jobs but runs none (the command-line tools).
func New(db *sqldb.DB, o Options, handlers ...Handler) (*Queue, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 200 * time.Millisecond
	}
	if o.JobTimeout <= 0 {
		o.JobTimeout = time.Minute
	}
	if o.RescueAfter <= o.JobTimeout {
		o.RescueAfter = o.JobTimeout + time.Minute
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	cfg := &river.Config{
		Logger:                      o.Logger,
		JobTimeout:                  o.JobTimeout,
		RescueStuckJobsAfter:        o.RescueAfter,
		MaxAttempts:                 o.MaxAttempts,
		FetchPollInterval:           o.PollInterval,
		FetchCooldown:               min(o.PollInterval, 50*time.Millisecond),
		CompletedJobRetentionPeriod: time.Minute,
		CancelledJobRetentionPeriod: time.Hour,
		DiscardedJobRetentionPeriod: 7 * 24 * time.Hour,
		// Jobs are found by polling: River over database/sql has no
		// LISTEN on PostgreSQL, and SQLite has none at all.
		PollOnly: true,
		// River's nightly REINDEX would hold SQLite's one writer.
		ReindexerIndexNames: []string{},
	}
	if len(handlers) > 0 {
		w := river.NewWorkers()
		for _, h := range handlers {
			if err := h.register(w); err != nil {
				return nil, fmt.Errorf("jobs: %s: %w", h.kind, err)
			}
		}
		cfg.Workers = w
		cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: o.Workers}}
		for _, p := range o.Periodic {
			args := p.Args
			cfg.PeriodicJobs = append(cfg.PeriodicJobs, river.NewPeriodicJob(river.PeriodicInterval(p.Every),
				func() (river.JobArgs, *river.InsertOpts) { return enqueued{args()}, nil },
				&river.PeriodicJobOpts{RunOnStart: true}))
		}
	}
	var (
		client *river.Client[*sql.Tx]
		err    error
	)
	// River shares carefront's write connections: on SQLite the single
	// writer, so its statements queue behind carefront's like any other.
	if db.Dialect == sqldb.Postgres {
		client, err = river.NewClient(riverdatabasesql.New(db.RawWriter()), cfg)
	} else {
		client, err = river.NewClient(riversqlite.New(db.RawWriter()), cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	return &Queue{client: client, runs: len(handlers) > 0}, nil
}

// EnqueueOptions change how one job is enqueued.
type EnqueueOptions struct {
	// UniqueFor, when set, makes this job a no-op if a job of the same kind
	// and arguments was enqueued within this period and has not failed:
	// for jobs where a duplicate would be wrong (a reminder sent twice).
	UniqueFor time.Duration
	// MaxAttempts overrides the queue's.
	MaxAttempts int
	// At, when set, is when the job is to run (a reminder); until then it
	// waits in the database, so a restart neither loses nor repeats it.
	At time.Time
}

// EnqueueTx adds a job in tx, the transaction of the change that causes it:
// it runs only if tx commits. It reports whether the job was added (false
// for a duplicate of a unique job).
func (q *Queue) EnqueueTx(ctx context.Context, tx *sqldb.Tx, args Args, o *EnqueueOptions) (bool, error) {
	stx := tx.SQL()
	if stx == nil {
		return false, errors.New("jobs: enqueue needs a write transaction")
	}
	var opts *river.InsertOpts
	if o != nil {
		opts = &river.InsertOpts{MaxAttempts: o.MaxAttempts, ScheduledAt: o.At}
		if o.UniqueFor > 0 {
			opts.UniqueOpts = river.UniqueOpts{ByArgs: true, ByPeriod: o.UniqueFor}
		}
	}
	res, err := q.client.InsertTx(ctx, stx, enqueued{args}, opts)
	if err != nil {
		return false, fmt.Errorf("jobs: enqueue %s: %w", args.Kind(), err)
	}
	return !res.UniqueSkippedAsDuplicate, nil
}

// enqueued carries any Args to River on the way in.
type enqueued struct{ Args }

func (e enqueued) MarshalJSON() ([]byte, error) { return json.Marshal(e.Args) }

// Later is what a handler returns to run its job again after d, without
// spending an attempt: for work that must wait (a notice held back by the
// person's quiet hours), not for a failure.
func Later(d time.Duration) error { return river.JobSnooze(max(d, 0)) }

// Start runs jobs until Stop. It does nothing for a queue with no handlers.
func (q *Queue) Start(ctx context.Context) error {
	if !q.runs {
		return nil
	}
	return q.client.Start(ctx)
}

// Stop stops taking new jobs and waits, until ctx ends, for the running
// ones to finish (a graceful drain); jobs still running then are cancelled
// and run again later, by this instance or another.
func (q *Queue) Stop(ctx context.Context) error {
	if !q.runs {
		return nil
	}
	err := q.client.Stop(ctx)
	if ctx.Err() != nil {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return q.client.StopAndCancel(cctx)
	}
	return err
}

// Failed is one job that spent every attempt.
type Failed struct {
	ID        int64
	Kind      string
	Attempts  int
	Created   time.Time
	LastError string // the handler's last error (ids and codes, never PHI)
	FailedAt  time.Time
}

// ListFailed returns the jobs that spent every attempt, newest first.
func (q *Queue) ListFailed(ctx context.Context, limit int) ([]Failed, error) {
	res, err := q.client.JobList(ctx, river.NewJobListParams().States(rivertype.JobStateDiscarded).
		OrderBy(river.JobListOrderByID, river.SortOrderDesc).First(limit))
	if err != nil {
		return nil, fmt.Errorf("jobs: list: %w", err)
	}
	out := make([]Failed, 0, len(res.Jobs))
	for _, j := range res.Jobs {
		f := Failed{ID: j.ID, Kind: j.Kind, Attempts: j.Attempt, Created: j.CreatedAt}
		if n := len(j.Errors); n > 0 {
			f.LastError, f.FailedAt = j.Errors[n-1].Error, j.Errors[n-1].At
		}
		if j.FinalizedAt != nil {
			f.FailedAt = *j.FinalizedAt
		}
		out = append(out, f)
	}
	return out, nil
}

// ErrNoJob is Retry's answer for an id with no job.
var ErrNoJob = errors.New("jobs: no such job")

// Retry makes a job run again soon, with one more attempt if it had spent
// them all.
func (q *Queue) Retry(ctx context.Context, id int64) error {
	_, err := q.client.JobRetry(ctx, id)
	if errors.Is(err, river.ErrNotFound) {
		return ErrNoJob
	}
	if err != nil {
		return fmt.Errorf("jobs: retry %d: %w", id, err)
	}
	return nil
}

// Pending counts the jobs not finished yet: waiting, running, or waiting to
// run again. Tests wait for none before looking at what the jobs did.
func Pending(ctx context.Context, db *sqldb.DB) (int, error) {
	var n int
	err := db.ReadOne(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT COUNT(*) FROM river_job WHERE state IN ('available', 'running', 'retryable', 'scheduled', 'pending')").Scan(&n)
	})
	return n, err
}
