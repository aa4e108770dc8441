// Command messagebench measures secure messaging on SQLite and PostgreSQL:
// messages sent per second (each a decided, audited write with its text
// sealed and its notice job enqueued in the same transaction) at 1 and 16
// clients, and, with a mail worker running beside them, how long a notice
// waits from the message's commit to its delivery (p50, p99; delivered to
// a local SMTP server over STARTTLS, the way mail leaves carefront).
//
//	go run ./bench/messagebench -postgres "$CAREFRONT_TEST_POSTGRES"
package main

import (
	"context"
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
	"carefront/internal/audit"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/identity"
	"carefront/internal/jobs"
	"carefront/internal/messaging"
	"carefront/internal/notify"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
)

func main() {
	pg := flag.String("postgres", os.Getenv("CAREFRONT_TEST_POSTGRES"), "PostgreSQL DSN (a schema is created and dropped)")
	dur := flag.Duration("duration", 5*time.Second, "how long each cell runs")
	only := flag.String("databases", "sqlite,postgres", "which databases to measure")
	flag.Parse()
	fmt.Printf("messages sent per second; notice latency from commit to delivery; %s per cell\n\n", *dur)
	fmt.Printf("%-9s %7s %10s %12s %12s %10s\n", "database", "clients", "msgs/s", "notice p50", "notice p99", "notices")
	for _, d := range []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres} {
		if !strings.Contains(*only, string(d)) || (d == sqldb.Postgres && *pg == "") {
			continue
		}
		for _, clients := range []int{1, 16} {
			if err := cell(context.Background(), d, *pg, clients, *dur); err != nil {
				fmt.Fprintln(os.Stderr, "messagebench:", err)
				os.Exit(1)
			}
		}
	}
}

func cell(ctx context.Context, d sqldb.Dialect, pg string, clients int, dur time.Duration) error {
	db, cleanup, err := benchdb.Fresh(ctx, d, pg, true)
	if err != nil {
		return err
	}
	defer cleanup()
	k, err := seal.Generate()
	if err != nil {
		return err
	}
	sig, _ := audit.NewSigner(make([]byte, 32))
	aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "messagebench"})
	defer aw.Close(ctx)
	ids := identity.NewStore(db, k)
	for _, a := range []*identity.Account{
		{Kind: identity.Staff, Email: "rivera@clinic.example", StaffRole: "clinician", DisplayName: "Dr. Rivera"},
		{Kind: identity.Person, Email: "maria@example.com", PatientID: "maria"},
	} {
		if err := ids.CreateAccount(ctx, a); err != nil {
			return err
		}
	}
	out, err := newSink()
	if err != nil {
		return err
	}
	defer out.close()
	mail := &notify.SMTP{Addr: out.addr, From: "portal@clinic.example", RootCAs: out.roots}
	auth := &identity.Auth{Store: ids, Keys: k, Mail: mail, Audit: aw}
	q, err := jobs.New(db, jobs.Options{PollInterval: 50 * time.Millisecond}, auth.MailHandler())
	if err != nil {
		return err
	}
	auth.Jobs = q
	if err := q.Start(ctx); err != nil {
		return err
	}
	defer q.Stop(context.Background())
	s := &messaging.Store{DB: db, Keys: k, Audit: aw, Notices: auth}
	pool, err := s.AddPool(ctx, messaging.NewPool{Name: "Dr. Rivera's team", ResponseTime: 48 * time.Hour})
	if err != nil {
		return err
	}
	if err := s.AddMember(ctx, pool.ID, "rivera@clinic.example", ""); err != nil {
		return err
	}
	gw := &clinical.Gateway{Source: store.New(db), Audit: aw, Policies: &access.Store{DB: db}}
	maria := clinical.Request{Principal: access.Principal{User: "Patient/maria", Patient: "maria"}}
	who := messaging.Author{Account: "", Kind: messaging.ByPatient}
	var acct string
	if err := db.ReadOne(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT id FROM account WHERE email = 'maria@example.com'").Scan(&acct)
	}); err != nil {
		return err
	}
	who.Account = acct
	// One thread per client, as people write to their team.
	threads := make([]string, clients)
	for i := range threads {
		th, err := s.Start(ctx, gw, maria, who, []messaging.Pool{*pool}, pool.ID, "Question", "A first question.")
		if err != nil {
			return err
		}
		threads[i] = th.ID
	}
	for out.count() < clients { // the first notices, before the clock starts
		time.Sleep(10 * time.Millisecond)
	}
	var (
		mu   sync.Mutex
		sent []time.Time
	)
	_, _, rate, err := benchdb.Run(clients, dur, func(i int, _ *rand.Rand) error {
		if _, err := s.Send(ctx, gw, maria, who, threads[i], "Another question about my visit on Friday."); err != nil {
			return err
		}
		mu.Lock()
		sent = append(sent, time.Now())
		mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	// Every notice arrives; latency pairs the n-th commit with the n-th
	// delivery (the queue sends in order of enqueueing, near enough for
	// percentiles).
	deadline := time.Now().Add(2 * time.Minute)
	for out.count() < clients+len(sent) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	out.mu.Lock()
	seen := slices.Clone(out.seen[clients:])
	out.mu.Unlock()
	slices.SortFunc(seen, func(a, b time.Time) int { return a.Compare(b) })
	var lat []time.Duration
	for n := 0; n < len(sent) && n < len(seen); n++ {
		lat = append(lat, seen[n].Sub(sent[n]))
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	fmt.Printf("%-9s %7d %10.0f %10.1fms %10.1fms %10d\n", d, clients, rate, pct(0.5), pct(0.99), len(seen))
	return nil
}
