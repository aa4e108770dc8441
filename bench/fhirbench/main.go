// Command fhirbench measures the embedded FHIR store on SQLite and
// PostgreSQL: import throughput of the Synthea fixtures (resources/s), and
// latency (p50, p99) and throughput of a read by id and of the lab-trend
// search Observation?patient=X&code=http://loinc.org|4548-4&_sort=date at 1
// and 16 concurrent clients, straight from the store and through the
// clinical gateway (access decision and durable audit record) side by side.
//
//	go run ./bench/fhirbench -synthea ../shared/fixtures/synthea-r4 -postgres "$CAREFRONT_TEST_POSTGRES"
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"carefront/bench/benchdb"
	"carefront/internal/access"
	"carefront/internal/audit"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
)

func main() {
	pg := flag.String("postgres", os.Getenv("CAREFRONT_TEST_POSTGRES"), "PostgreSQL DSN (a schema is created and dropped); empty skips PostgreSQL")
	synthea := flag.String("synthea", os.Getenv("CAREFRONT_SYNTHEA_DIR"), "folder of Synthea transaction Bundles")
	dur := flag.Duration("duration", 3*time.Second, "how long each latency measurement runs")
	rounds := flag.Int("rounds", 3, "imports per database (each into a fresh database); the median is reported")
	only := flag.String("databases", "sqlite,postgres", "which databases to measure")
	clientsFlag := flag.String("clients", "1,16", "concurrent clients, comma-separated")
	flag.Parse()
	if *synthea == "" {
		fail(fmt.Errorf("give the fixtures folder with -synthea or CAREFRONT_SYNTHEA_DIR"))
	}
	var clients []int
	for _, s := range strings.Split(*clientsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fail(fmt.Errorf("-clients takes whole numbers like 1,16"))
		}
		clients = append(clients, n)
	}
	var dialects []sqldb.Dialect
	if strings.Contains(*only, "sqlite") {
		dialects = append(dialects, sqldb.SQLite)
	}
	if strings.Contains(*only, "postgres") {
		if *pg == "" {
			fail(fmt.Errorf("PostgreSQL asked for but no DSN: set -postgres or CAREFRONT_TEST_POSTGRES"))
		}
		dialects = append(dialects, sqldb.Postgres)
	}
	ctx := context.Background()
	fmt.Printf("import of %s (median of %d imports into fresh databases)\n\n", *synthea, *rounds)
	fmt.Printf("%-9s %10s %12s %14s %16s\n", "database", "resources", "seconds", "resources/s", "re-import res/s")
	for _, d := range dialects {
		if err := benchImport(ctx, d, *pg, *synthea, *rounds); err != nil {
			fail(err)
		}
	}
	fmt.Printf("\nlatency in ms and operations/s, %s per cell\n\n", *dur)
	fmt.Printf("%-9s %-13s %-8s %7s %8s %8s %10s\n", "database", "operation", "path", "clients", "p50", "p99", "ops/s")
	for _, d := range dialects {
		if err := benchQueries(ctx, d, *pg, *synthea, clients, *dur); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fhirbench:", err)
	os.Exit(1)
}

// load imports the fixtures into db (benchdb.Import).
func load(ctx context.Context, db *sqldb.DB, dir string) (int, time.Duration, error) {
	return benchdb.Import(ctx, db, dir)
}

func benchImport(ctx context.Context, d sqldb.Dialect, pg, dir string, rounds int) error {
	var rates, again []float64
	var n int
	var took []time.Duration
	for range rounds {
		db, cleanup, err := benchdb.Fresh(ctx, d, pg, true)
		if err != nil {
			return err
		}
		var t time.Duration
		n, t, err = load(ctx, db, dir)
		if err != nil {
			cleanup()
			return err
		}
		took = append(took, t)
		rates = append(rates, float64(n)/t.Seconds())
		_, t2, err := load(ctx, db, dir)
		cleanup()
		if err != nil {
			return err
		}
		again = append(again, float64(n)/t2.Seconds())
	}
	slices.Sort(took)
	fmt.Printf("%-9s %10d %12.2f %14.0f %16.0f\n", d, n, took[len(took)/2].Seconds(), median(rates), median(again))
	return nil
}

func median(v []float64) float64 {
	slices.Sort(v)
	return v[len(v)/2]
}

func benchQueries(ctx context.Context, d sqldb.Dialect, pg, dir string, clients []int, dur time.Duration) error {
	db, cleanup, err := benchdb.Fresh(ctx, d, pg, true)
	if err != nil {
		return err
	}
	defer cleanup()
	if _, _, err := load(ctx, db, dir); err != nil {
		return err
	}
	st := store.New(db)
	sig, _ := audit.NewSigner(make([]byte, 32))
	aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "fhirbench", CheckpointEvery: 1000})
	defer aw.Close(ctx)
	gw := &clinical.Gateway{Source: st, Audit: aw}

	// The patient with the most A1c results, and their observations.
	patient, most, ids, err := benchdb.MostA1c(ctx, st)
	if err != nil {
		return err
	}
	req := clinical.Request{Principal: access.Principal{User: "Patient/" + patient, Patient: patient}, RequestID: "fhirbench"}
	trend, _ := fhir.ParseQuery("Observation", url.Values{"patient": {patient}, "code": {"http://loinc.org|4548-4"}, "_sort": {"date"}}, false)

	ops := []struct {
		name, path string
		fn         func(r *rand.Rand) error
	}{
		{"read by id", "store", func(r *rand.Rand) error { _, err := st.Read(ctx, "Observation", ids[r.IntN(len(ids))]); return err }},
		{"read by id", "gateway", func(r *rand.Rand) error {
			_, err := gw.Read(ctx, req, "Observation", ids[r.IntN(len(ids))])
			return err
		}},
		{"A1c trend", "store", func(*rand.Rand) error { _, err := st.Search(ctx, trend); return err }},
		{"A1c trend", "gateway", func(*rand.Rand) error { _, err := gw.Search(ctx, req, trend); return err }},
	}
	for _, op := range ops {
		for _, c := range clients {
			p50, p99, rate, err := benchdb.Run(c, dur, func(_ int, r *rand.Rand) error { return op.fn(r) })
			if err != nil {
				return fmt.Errorf("%s %s: %w", op.name, op.path, err)
			}
			fmt.Printf("%-9s %-13s %-8s %7d %8.3f %8.3f %10.0f\n", d, op.name, op.path, c, p50, p99, rate)
		}
	}
	fmt.Printf("(%s: patient with %d A1c results, %d observations)\n", d, most, len(ids))
	return nil
}
