// Command homebench measures the signed-in home view through the real web
// handler (session lookup, access decisions, durable audit, JSON), for
// concurrent signed-in users on the demo population: latency p50/p99 and
// requests per second, with the view's queries in parallel and one after
// another, side by side in one run, on the embedded store and against an
// upstream FHIR server that adds a fixed delay to every call. It also
// measures the results trend page of the Synthea patient with the most
// observations when -synthea names the fixtures.
//
//	go run ./bench/homebench -duration 10s -synthea ../shared/fixtures/synthea-r4
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"carefront/bench/benchdb"
	"carefront/internal/access"
	"carefront/internal/audit"
	"carefront/internal/clinical"
	"carefront/internal/clinical/importer"
	"carefront/internal/clinical/store"
	"carefront/internal/clinical/upstream"
	"carefront/internal/demo"
	"carefront/internal/fhir"
	"carefront/internal/identity"
	"carefront/internal/locale"
	"carefront/internal/seal"
	"carefront/internal/session"
	"carefront/internal/sqldb"
	"carefront/internal/views"
	"carefront/internal/web"
)

func main() {
	dur := flag.Duration("duration", 10*time.Second, "how long each cell offers load")
	users := flag.Int("users", 16, "concurrent signed-in users")
	delay := flag.Duration("upstream-delay", 20*time.Millisecond, "delay the upstream FHIR server adds to every call")
	synthea := flag.String("synthea", "", "folder of Synthea fixture Bundles for the trend page measurement; empty skips it")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	flag.Parse()
	stopProfile, err := benchdb.CPUProfile(*cpuProfile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "homebench:", err)
		os.Exit(1)
	}
	defer stopProfile()
	if err := run(*dur, *users, *delay, *synthea); err != nil {
		stopProfile()
		fmt.Fprintln(os.Stderr, "homebench:", err)
		os.Exit(1)
	}
}

type bench struct {
	db       *sqldb.DB
	st       *store.Store
	aw       *audit.Writer
	ids      *identity.Store
	sessions *session.Manager
	policies *access.Store
	dict     *views.Dictionary
	cat      *locale.Catalog
}

func run(dur time.Duration, users int, delay time.Duration, synthea string) error {
	ctx := context.Background()
	db, cleanup, err := benchdb.Fresh(ctx, sqldb.SQLite, "", true)
	if err != nil {
		return err
	}
	defer cleanup()
	b := &bench{db: db, st: store.New(db), sessions: session.NewManager(db)}
	b.sessions.Insecure = true
	sig, _ := audit.NewSigner(make([]byte, 32))
	b.aw = audit.NewWriter(db, audit.Options{Signer: sig, Observer: "homebench", CheckpointEvery: 1000})
	defer b.aw.Close(ctx)
	if _, err := demo.Seed(ctx, b.st, b.aw, time.Now()); err != nil {
		return err
	}
	k, err := seal.Generate()
	if err != nil {
		return err
	}
	b.ids = identity.NewStore(db, k)
	b.policies = &access.Store{DB: db, Audit: b.aw}
	if b.dict, err = views.LoadDictionary(""); err != nil {
		return err
	}
	if b.cat, err = locale.Load(); err != nil {
		return err
	}
	// One account per demo patient; the users are sessions spread over them.
	var cookies []*http.Cookie
	patients := []string{demo.Maria, demo.Walter, demo.Sam, demo.Lily}
	accounts := make([]string, len(patients))
	for i, p := range patients {
		a := &identity.Account{Kind: identity.Person, Email: p + "@bench.example", PatientID: p}
		if err := b.ids.CreateAccount(ctx, a); err != nil {
			return err
		}
		accounts[i] = a.ID
	}
	for i := range users {
		tok, _, err := b.sessions.Create(ctx, accounts[i%len(accounts)], session.LevelMFA, time.Hour, "homebench", "127.0.0.1")
		if err != nil {
			return err
		}
		cookies = append(cookies, b.sessions.Cookie(tok))
	}

	// The upstream FHIR server: the same data served over HTTP, each call
	// answered after a fixed delay.
	ehr := httptest.NewServer(fhirServer(b.st, delay))
	defer ehr.Close()
	up, err := upstream.New(upstream.Options{BaseURL: ehr.URL + "/fhir", Token: "bench",
		HTTP: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}})
	if err != nil {
		return err
	}

	fmt.Printf("home view (GET /api/views/home), %d signed-in users on the demo population, %s per cell, GOMAXPROCS=%d\n\n", users, dur, maxProcs())
	fmt.Printf("%-38s %12s %10s %10s %12s\n", "source, queries", "requests/s", "p50 ms", "p99 ms", "errors")
	type cell struct {
		name  string
		src   clinical.Source
		seq   bool
		cache bool
	}
	results := map[string]stats{}
	for _, c := range []cell{
		{"embedded, parallel", b.st, false, false}, {"embedded, one after another", b.st, true, false},
		{"embedded, one after another, cache", b.st, true, true},
		{fmt.Sprintf("upstream +%s, parallel", delay), up, false, false}, {fmt.Sprintf("upstream +%s, one after another", delay), up, true, false},
	} {
		srv, err := b.server(c.src, c.seq, c.cache)
		if err != nil {
			return err
		}
		ts := httptest.NewServer(srv)
		s := load(ts.URL+"/api/views/home", cookies, dur)
		ts.Close()
		results[c.name] = s
		fmt.Printf("%-38s %12.1f %10.2f %10.2f %12d\n", c.name, s.rps, s.p50, s.p99, s.errors)
	}
	ue := fmt.Sprintf("upstream +%s", delay)
	fmt.Printf("\nparallel/sequential p50: embedded %.2fx, %s %.2fx\n",
		results["embedded, parallel"].p50/results["embedded, one after another"].p50, ue,
		results[ue+", parallel"].p50/results[ue+", one after another"].p50)

	if synthea != "" {
		return b.trend(ctx, synthea, dur)
	}
	return nil
}

func maxProcs() int { return runtime.GOMAXPROCS(0) }

// server is the web handler over src; with cache, home views are kept as
// serve keeps them.
func (b *bench) server(src clinical.Source, sequential, cache bool) (http.Handler, error) {
	gw := &clinical.Gateway{Source: src, Audit: b.aw, Policies: b.policies}
	vb := &views.Builder{Gateway: gw, Dict: b.dict, Sequential: sequential}
	if cache {
		vb.Cache = &views.Cache{TTL: views.DefaultCacheTTL}
	}
	return web.New(web.Options{Logger: slog.New(slog.DiscardHandler), Catalog: b.cat, Version: "bench",
		Auth: &identity.Auth{Store: b.ids, Audit: b.aw}, Sessions: b.sessions, Clinical: gw, Policies: b.policies,
		Views: vb, Sanitizer: views.DocumentPolicy()})
}

type stats struct {
	rps, p50, p99 float64
	errors        int64
}

// load has one client per cookie ask for url until dur is over.
func load(target string, cookies []*http.Cookie, dur time.Duration) stats {
	var (
		mu   sync.Mutex
		lat  []time.Duration
		n    atomic.Int64
		errs atomic.Int64
		wg   sync.WaitGroup
	)
	stop := time.Now().Add(dur)
	start := time.Now()
	for _, c := range cookies {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			var mine []time.Duration
			for time.Now().Before(stop) {
				req, _ := http.NewRequest("GET", target, nil)
				req.AddCookie(c)
				t := time.Now()
				res, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					errs.Add(1)
					continue
				}
				mine = append(mine, time.Since(t))
				n.Add(1)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	took := time.Since(start)
	slices.Sort(lat)
	q := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	return stats{rps: float64(n.Load()) / took.Seconds(), p50: q(0.5), p99: q(0.99), errors: errs.Load()}
}

// trend imports the Synthea fixtures and measures the trend page of the
// patient with the most observations, for that patient's most frequent
// numeric test, at 1 and 16 clients.
func (b *bench) trend(ctx context.Context, dir string, dur time.Duration) error {
	sum, err := (&importer.Importer{Store: b.st, Audit: b.aw}).Run(ctx, []string{dir})
	if err != nil {
		return err
	}
	if len(sum.Failed) > 0 {
		return fmt.Errorf("import: %v", sum.Failed[0])
	}
	// Count observations per patient and per test from the files, apart
	// from carefront's own code.
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	best, bestN := "", 0
	var bestObs []map[string]any
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var bundle struct {
			Entry []struct{ Resource map[string]any } `json:"entry"`
		}
		if err := json.Unmarshal(raw, &bundle); err != nil {
			return err
		}
		var patient string
		var obs []map[string]any
		for _, e := range bundle.Entry {
			switch e.Resource["resourceType"] {
			case "Patient":
				patient, _ = e.Resource["id"].(string)
			case "Observation":
				obs = append(obs, e.Resource)
			}
		}
		if len(obs) > bestN {
			best, bestN, bestObs = patient, len(obs), obs
		}
	}
	counts := map[string]int{}
	for _, o := range bestObs {
		if _, ok := o["valueQuantity"]; !ok {
			continue
		}
		for _, c := range o["code"].(map[string]any)["coding"].([]any) {
			cm := c.(map[string]any)
			if cm["system"] == "http://loinc.org" {
				counts[cm["code"].(string)]++
			}
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return counts[keys[i]] > counts[keys[j]] || counts[keys[i]] == counts[keys[j]] && keys[i] < keys[j]
	})
	if len(keys) == 0 {
		return fmt.Errorf("no numeric LOINC results for %s", best)
	}
	a := &identity.Account{Kind: identity.Person, Email: "synthea@bench.example", PatientID: best}
	if err := b.ids.CreateAccount(ctx, a); err != nil {
		return err
	}
	var cookies []*http.Cookie
	for range 16 {
		tok, _, err := b.sessions.Create(ctx, a.ID, session.LevelMFA, time.Hour, "homebench", "127.0.0.1")
		if err != nil {
			return err
		}
		cookies = append(cookies, b.sessions.Cookie(tok))
	}
	srv, err := b.server(b.st, true, false)
	if err != nil {
		return err
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	target := ts.URL + "/results/" + url.PathEscape(keys[0])
	fmt.Printf("\ntrend page (GET /results/%s, %d results) of the Synthea patient with the most observations (%d), embedded store\n\n", keys[0], counts[keys[0]], bestN)
	fmt.Printf("%-38s %12s %10s %10s %12s\n", "clients", "requests/s", "p50 ms", "p99 ms", "errors")
	for _, n := range []int{1, 16} {
		s := load(target, cookies[:n], dur)
		fmt.Printf("%-38d %12.1f %10.2f %10.2f %12d\n", n, s.rps, s.p50, s.p99, s.errors)
	}
	return nil
}

// fhirServer serves st's resources as a FHIR server would, each answer
// after delay.
func fhirServer(st *store.Store, delay time.Duration) http.Handler {
	mux := http.NewServeMux()
	answer := func(w http.ResponseWriter, v []byte, err error) {
		time.Sleep(delay)
		if err != nil {
			oc, status := fhir.OutcomeJSON(err)
			w.WriteHeader(status)
			w.Write(oc)
			return
		}
		w.Header().Set("Content-Type", "application/fhir+json")
		w.Write(v)
	}
	mux.HandleFunc("GET /fhir/{type}/{id}", func(w http.ResponseWriter, r *http.Request) {
		res, err := st.Read(r.Context(), r.PathValue("type"), r.PathValue("id"))
		if err != nil {
			answer(w, nil, err)
			return
		}
		answer(w, res.Raw, nil)
	})
	mux.HandleFunc("GET /fhir/{type}", func(w http.ResponseWriter, r *http.Request) {
		q, err := fhir.ParseQuery(r.PathValue("type"), r.URL.Query(), false)
		var page *fhir.Page
		if err == nil {
			page, err = st.Search(r.Context(), q)
		}
		if err != nil {
			answer(w, nil, err)
			return
		}
		raw, err := json.Marshal(fhir.SearchBundle("http://"+r.Host+"/fhir", q, page))
		answer(w, raw, err)
	})
	return mux
}
