// Command bookbench measures booking under contention on SQLite and
// PostgreSQL: 16 clients race for the same 100 free Slots (each client
// tries every Slot, in its own random order, until none is left), and the
// bench checks that every Slot ends booked exactly once. It reports
// bookings per second, the latency of a booking and of a refusal ("taken"),
// and the count of each.
//
//	go run ./bench/bookbench -postgres "$CAREFRONT_TEST_POSTGRES"
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"carefront/bench/benchdb"
	"carefront/internal/access"
	"carefront/internal/appointments"
	"carefront/internal/audit"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/demo"
	"carefront/internal/sqldb"
)

func main() {
	pg := flag.String("postgres", os.Getenv("CAREFRONT_TEST_POSTGRES"), "PostgreSQL DSN (a schema is created and dropped)")
	only := flag.String("databases", "sqlite,postgres", "which databases to measure")
	clients := flag.Int("clients", 16, "clients racing")
	slots := flag.Int("slots", 100, "free Slots they race for")
	flag.Parse()
	fmt.Printf("%d clients racing for %d free slots; every slot must end booked once\n\n", *clients, *slots)
	fmt.Printf("%-9s %9s %10s %10s %10s %10s %8s\n", "database", "booked/s", "book p50", "book p99", "taken p50", "taken p99", "taken")
	for _, d := range []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres} {
		if !strings.Contains(*only, string(d)) || (d == sqldb.Postgres && *pg == "") {
			continue
		}
		if err := race(context.Background(), d, *pg, *clients, *slots); err != nil {
			fmt.Fprintln(os.Stderr, "bookbench:", err)
			os.Exit(1)
		}
	}
}

func race(ctx context.Context, d sqldb.Dialect, pg string, clients, n int) error {
	db, cleanup, err := benchdb.Fresh(ctx, d, pg, true)
	if err != nil {
		return err
	}
	defer cleanup()
	sig, _ := audit.NewSigner(make([]byte, 32))
	aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "bookbench"})
	defer aw.Close(ctx)
	st := store.New(db)
	now := time.Now()
	if _, err := demo.Seed(ctx, st, aw, now); err != nil {
		return err
	}
	if _, err := demo.SeedSlots(ctx, st, now, time.UTC); err != nil {
		return err
	}
	// Four demo patients take all n times, so the cap on visits ahead is
	// raised to n; its count (and, on PostgreSQL, the patient's lock) still
	// runs in every booking.
	s := &appointments.Store{DB: db, FHIR: st, Audit: aw, MaxUpcoming: n}
	free, err := s.Free(ctx, appointments.Filter{From: now.AddDate(0, 0, 2)})
	if err != nil {
		return err
	}
	if len(free) < n {
		return fmt.Errorf("%d free slots, want %d", len(free), n)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = free[i].ID
	}
	gw := &clinical.Gateway{Source: st, Audit: aw, Policies: &access.Store{DB: db}}
	patients := []string{demo.Maria, demo.Walter, demo.Sam, demo.Lily}
	var (
		mu           sync.Mutex
		booked       = map[string]int{}
		okLat, noLat []time.Duration
		wg           sync.WaitGroup
		firstErr     error
	)
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			order := slices.Clone(ids)
			r := rand.New(rand.NewPCG(uint64(c), 7))
			r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			req := clinical.Request{Principal: access.Principal{User: fmt.Sprintf("Person/bench-%d", c), Patient: patients[c%len(patients)]}}
			who := appointments.Author{Account: fmt.Sprintf("bench-%d", c)}
			for _, slot := range order {
				t := time.Now()
				_, err := s.Book(ctx, gw, req, who, slot, "")
				took := time.Since(t)
				mu.Lock()
				switch {
				case err == nil:
					booked[slot]++
					okLat = append(okLat, took)
				case errors.Is(err, appointments.ErrSlotTaken):
					noLat = append(noLat, took)
				default:
					if firstErr == nil {
						firstErr = err
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return firstErr
	}
	for _, id := range ids {
		if booked[id] != 1 {
			return fmt.Errorf("slot %s was booked %d times", id, booked[id])
		}
	}
	var claims int
	if err := db.ReadOne(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT COUNT(*) FROM appointment_slot").Scan(&claims)
	}); err != nil {
		return err
	}
	if claims != n {
		return fmt.Errorf("%d claims in the database, want %d", claims, n)
	}
	pct := func(l []time.Duration, p float64) float64 {
		if len(l) == 0 {
			return 0
		}
		slices.Sort(l)
		return float64(l[min(len(l)-1, int(p*float64(len(l))))].Microseconds()) / 1000
	}
	fmt.Printf("%-9s %9.0f %8.1fms %8.1fms %8.1fms %8.1fms %8d\n", d, float64(n)/elapsed.Seconds(),
		pct(okLat, 0.5), pct(okLat, 0.99), pct(noLat, 0.5), pct(noLat, 0.99), len(noLat))
	return nil
}
