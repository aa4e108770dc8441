// Command signinbench offers password sign-ins to the real web handler at
// twice its hashing capacity for a while and reports completed sign-ins
// per second, the latency of the fast 429 answers past capacity, and the
// process's peak memory (bounded by the cap on argon2id hashes in flight).
//
//	go run ./bench/signinbench -duration 30s
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"carefront/bench/benchdb"
	"carefront/internal/audit"
	"carefront/internal/identity"
	"carefront/internal/locale"
	"carefront/internal/seal"
	"carefront/internal/session"
	"carefront/internal/sqldb"
	"carefront/internal/web"
)

func main() {
	dur := flag.Duration("duration", 30*time.Second, "how long to offer load")
	factor := flag.Int("factor", 2, "concurrent clients as a multiple of the hashing capacity")
	capFlag := flag.Int("capacity", 0, "argon2id hashes at once; 0 means what serve uses (one per core)")
	procs := flag.Int("procs", 0, "GOMAXPROCS; 0 means what serve uses (twice the cores)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	flag.Parse()
	stopProfile, err := benchdb.CPUProfile(*cpuProfile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "signinbench:", err)
		os.Exit(1)
	}
	defer stopProfile()
	if *procs == 0 {
		*procs = 2 * runtime.NumCPU()
	}
	runtime.GOMAXPROCS(*procs)
	if err := run(*dur, *factor, *capFlag); err != nil {
		stopProfile()
		fmt.Fprintln(os.Stderr, "signinbench:", err)
		os.Exit(1)
	}
}

func run(dur time.Duration, factor, capacity int) error {
	ctx := context.Background()
	db, cleanup, err := benchdb.Fresh(ctx, sqldb.SQLite, "", true)
	if err != nil {
		return err
	}
	defer cleanup()
	k, err := seal.Generate()
	if err != nil {
		return err
	}
	st := identity.NewStore(db, k)
	if capacity <= 0 {
		capacity = runtime.NumCPU() // as serve sets it
	}
	hasher := identity.NewHasher(identity.DefaultParams, capacity)
	hash, err := hasher.Hash(ctx, "benchmark passphrase")
	if err != nil {
		return err
	}
	clients := factor * capacity
	for i := range clients {
		a := &identity.Account{Kind: identity.Person, Email: fmt.Sprintf("user%d@bench.example", i), PasswordHash: hash}
		if err := st.CreateAccount(ctx, a); err != nil {
			return err
		}
	}
	sig, _ := audit.NewSigner(make([]byte, 32))
	aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "signinbench", CheckpointEvery: 1000})
	defer aw.Close(ctx)
	cat, err := locale.Load()
	if err != nil {
		return err
	}
	srv, err := web.New(web.Options{Logger: slog.New(slog.DiscardHandler), Catalog: cat, Version: "bench",
		Auth: &identity.Auth{Store: st, Hasher: hasher, Audit: aw}, Sessions: session.NewManager(db)})
	if err != nil {
		return err
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()

	var (
		ok, busy, other atomic.Int64
		mu              sync.Mutex
		busyLat         []time.Duration
		peak            atomic.Uint64
		wg              sync.WaitGroup
	)
	stop := time.Now().Add(dur)
	done := make(chan struct{})
	go func() { // sample memory while the load runs
		var ms runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				if ms.Sys > peak.Load() {
					peak.Store(ms.Sys)
				}
			}
		}
	}()
	start := time.Now()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
				Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			form := url.Values{"email": {fmt.Sprintf("user%d@bench.example", i)}, "password": {"benchmark passphrase"}}.Encode()
			var mine []time.Duration
			for time.Now().Before(stop) {
				t := time.Now()
				res, err := c.Post(ts.URL+"/signin", "application/x-www-form-urlencoded", strings.NewReader(form))
				if err != nil {
					other.Add(1)
					continue
				}
				// Read the body to the end so the connection is reused, as a
				// browser's would be.
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				switch res.StatusCode {
				case http.StatusSeeOther:
					ok.Add(1)
				case http.StatusTooManyRequests:
					busy.Add(1)
					mine = append(mine, time.Since(t))
					// A browser would wait for Retry-After; the benchmark
					// keeps the offered load at its level instead.
					if s, _ := strconv.Atoi(res.Header.Get("Retry-After")); s > 0 {
						time.Sleep(10 * time.Millisecond)
					}
				default:
					other.Add(1)
				}
			}
			mu.Lock()
			busyLat = append(busyLat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(done)
	took := time.Since(start)
	slices.Sort(busyLat)
	p := func(q float64) float64 {
		if len(busyLat) == 0 {
			return 0
		}
		return float64(busyLat[min(len(busyLat)-1, int(q*float64(len(busyLat))))].Microseconds()) / 1000
	}
	fmt.Printf("password sign-ins, argon2id m=%d KiB t=%d p=%d, %d hashes at once, %d clients, %s\n\n",
		identity.DefaultParams.Memory, identity.DefaultParams.Time, identity.DefaultParams.Threads, capacity, clients, dur)
	fmt.Printf("%-28s %10.1f\n", "completed sign-ins/s", float64(ok.Load())/took.Seconds())
	fmt.Printf("%-28s %10d\n", "429 answers", busy.Load())
	fmt.Printf("%-28s %10.2f\n", "429 p50 ms", p(0.50))
	fmt.Printf("%-28s %10.2f\n", "429 p99 ms", p(0.99))
	fmt.Printf("%-28s %10d\n", "other answers", other.Load())
	fmt.Printf("%-28s %10.0f\n", "peak memory from Go, MiB", float64(peak.Load())/(1<<20))
	return nil
}
