package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"carefront/internal/jobs"
	"carefront/internal/sqldb"
)

// openQueue opens the migrated database and a job queue that runs nothing,
// for the operator's job commands.
func openQueue(ctx context.Context, cmd string, getenv func(string) string, stdout io.Writer, args []string, minArgs int, synopsis string, extra func(*flag.FlagSet)) (*sqldb.DB, *jobs.Queue, *flag.FlagSet, error) {
	cfg, fs, err := parseFlagsArgs(cmd, synopsis, minArgs, args, getenv, stdout, extra)
	if err != nil {
		return nil, nil, nil, err
	}
	db, err := openDB(ctx, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := db.Ready(ctx); err != nil {
		db.Close()
		return nil, nil, nil, fmt.Errorf("%s: database not ready (%v); run carefront migrate", cmd, err)
	}
	q, err := jobs.New(db, jobs.Options{})
	if err != nil {
		db.Close()
		return nil, nil, nil, err
	}
	return db, q, fs, nil
}

func runJobsList(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var failed bool
	var limit int
	db, q, _, err := openQueue(ctx, "jobs list", getenv, stdout, args, 0,
		"Lists the jobs that failed every attempt (mail the relay kept refusing, for\nexample), newest first, with their last error. Retry one with carefront jobs retry ID.",
		func(fs *flag.FlagSet) {
			fs.BoolVar(&failed, "failed", false, "list the jobs that failed every attempt (the only listing for now)")
			fs.IntVar(&limit, "limit", 100, "at most this many")
		})
	if err != nil {
		return err
	}
	defer db.Close()
	if !failed {
		return &usageError{"jobs list: give --failed"}
	}
	list, err := q.ListFailed(ctx, limit)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintln(stdout, "no failed jobs")
		return nil
	}
	fmt.Fprintf(stdout, "%-8s %-10s %-8s %-20s %s\n", "id", "kind", "attempts", "failed at (UTC)", "last error")
	for _, f := range list {
		fmt.Fprintf(stdout, "%-8d %-10s %-8d %-20s %s\n", f.ID, f.Kind, f.Attempts, f.FailedAt.UTC().Format(time.DateTime),
			strings.ReplaceAll(f.LastError, "\n", " "))
	}
	return nil
}

func runJobsRetry(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	db, q, fs, err := openQueue(ctx, "jobs retry", getenv, stdout, args, 1,
		"Runs a failed job again soon, with one more attempt.\n\nUsage: carefront jobs retry [flags] ID", nil)
	if err != nil {
		return err
	}
	defer db.Close()
	id, err := strconv.ParseInt(fs.Arg(0), 10, 64)
	if err != nil || fs.NArg() != 1 {
		return &usageError{"jobs retry: give one job id, a number (see carefront jobs list --failed)"}
	}
	if err := q.Retry(ctx, id); errors.Is(err, jobs.ErrNoJob) {
		return &usageError{fmt.Sprintf("jobs retry: no job %d", id)}
	} else if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "job %d will run again within seconds\n", id)
	return nil
}
