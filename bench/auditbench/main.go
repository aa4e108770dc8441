// Command auditbench measures audit append throughput (records committed
// per second) at 1 and 16 concurrent writers, with durable commits on and
// off, side by side, on SQLite and PostgreSQL. Every Append waits for its
// commit, as a request does. Runs alternate durable and non-durable and the
// median of -rounds is reported, so drift on a shared machine hits both.
//
//	go run ./bench/auditbench -postgres "$CAREFRONT_TEST_POSTGRES"
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"carefront/bench/benchdb"
	"carefront/internal/audit"
	"carefront/internal/sqldb"
)

func main() {
	pg := flag.String("postgres", os.Getenv("CAREFRONT_TEST_POSTGRES"), "PostgreSQL DSN (a schema is created and dropped per run); empty skips PostgreSQL")
	dur := flag.Duration("duration", 3*time.Second, "how long each measurement runs")
	rounds := flag.Int("rounds", 3, "measurements per cell; the median is reported")
	only := flag.String("databases", "sqlite,postgres", "which databases to measure")
	writersFlag := flag.String("writers", "1,16", "concurrent writers to measure, comma-separated")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	stopProfile, err := benchdb.CPUProfile(*profile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "auditbench:", err)
		os.Exit(1)
	}
	defer stopProfile()
	var writers []int
	for _, w := range strings.Split(*writersFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 1 {
			stopProfile()
			fmt.Fprintln(os.Stderr, "auditbench: -writers takes whole numbers like 1,16")
			os.Exit(2)
		}
		writers = append(writers, n)
	}
	if err := runAll(*pg, *only, writers, *dur, *rounds); err != nil {
		stopProfile()
		fmt.Fprintln(os.Stderr, "auditbench:", err)
		os.Exit(1)
	}
}

func runAll(pg, only string, writerCounts []int, dur time.Duration, rounds int) error {
	var dialects []sqldb.Dialect
	if strings.Contains(only, "sqlite") {
		dialects = append(dialects, sqldb.SQLite)
	}
	if strings.Contains(only, "postgres") {
		if pg == "" {
			return fmt.Errorf("PostgreSQL asked for but no DSN: set -postgres or CAREFRONT_TEST_POSTGRES")
		}
		dialects = append(dialects, sqldb.Postgres)
	}
	fmt.Printf("audit append throughput, records/s (median of %d runs of %s each)\n\n", rounds, dur)
	fmt.Printf("%-9s %7s %12s %12s %9s %14s\n", "database", "writers", "durable", "not durable", "ratio", "records/commit")
	for _, d := range dialects {
		for _, writers := range writerCounts {
			var on, off, batch []float64
			for r := 0; r < rounds; r++ {
				for _, durable := range []bool{r%2 == 0, r%2 != 0} {
					rate, perCommit, err := measure(d, pg, durable, writers, dur)
					if err != nil {
						return err
					}
					if durable {
						on = append(on, rate)
						batch = append(batch, perCommit)
					} else {
						off = append(off, rate)
					}
				}
			}
			mOn, mOff := median(on), median(off)
			fmt.Printf("%-9s %7d %12.0f %12.0f %8.2fx %14.1f\n", d, writers, mOn, mOff, mOn/mOff, median(batch))
		}
	}
	return nil
}

// measure appends from writers goroutines for dur on a fresh database and
// reports records/s and the mean records per group commit.
func measure(d sqldb.Dialect, pg string, durable bool, writers int, dur time.Duration) (float64, float64, error) {
	ctx := context.Background()
	db, cleanup, err := benchdb.Fresh(ctx, d, pg, durable)
	if err != nil {
		return 0, 0, err
	}
	defer cleanup()
	sig, err := audit.NewSigner(make([]byte, 32))
	if err != nil {
		return 0, 0, err
	}
	var commits, committed atomic.Int64
	w := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "auditbench", CheckpointEvery: 1000,
		Observe: func(n int, _ time.Duration, err error) {
			if err == nil {
				commits.Add(1)
				committed.Add(int64(n))
			}
		}})
	rec := audit.Record{
		Type: audit.TypeRESTful, Subtype: []audit.Coding{audit.SubtypeRead}, Action: audit.Read, Outcome: audit.Success,
		User: "Patient/bench", Address: "192.0.2.10", Patient: "Patient/bench",
		Entities: []audit.Entity{{What: "Observation/bench-1"}}, RequestID: "bench-request",
	}
	// Write back what earlier runs left dirty, so no run pays for another.
	syscall.Sync()
	var wg sync.WaitGroup
	var n atomic.Int64
	var firstErr atomic.Value
	stop := time.Now().Add(dur)
	start := time.Now()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				if err := w.Append(ctx, rec); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if err := w.Close(ctx); err != nil {
		return 0, 0, err
	}
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, 0, err
	}
	if _, err := audit.Verify(ctx, db, sig.Trust()); err != nil {
		return 0, 0, fmt.Errorf("chain written by the benchmark does not verify: %w", err)
	}
	return float64(n.Load()) / took.Seconds(), float64(committed.Load()) / float64(max(commits.Load(), 1)), nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
