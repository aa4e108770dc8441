// Command smartbench measures SMART on FHIR over HTTP, on SQLite and
// PostgreSQL: authorization code exchanges per second and refresh token
// rotations per second at the token endpoint; and the FHIR API's read by
// id and lab-trend search (Observation?patient=P&code=4548-4&_sort=date)
// at 1 and 16 clients, side by side with the bare store read in process,
// the store behind a plain HTTP handler (the same HTTP stack with no
// token, decision or audit), and the API on a database with durable
// commits off.
//
//	go run ./bench/smartbench -synthea ../shared/fixtures/synthea-r4 -postgres "$CAREFRONT_TEST_POSTGRES"
package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"carefront/bench/benchdb"
	"carefront/internal/access"
	"carefront/internal/audit"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/fhir"
	"carefront/internal/fhirapi"
	"carefront/internal/oauth"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
)

const (
	redirect = "https://diary.example/cb"
	verifier = "a-pkce-verifier-of-more-than-forty-three-characters-0123456789"
)

func main() {
	pg := flag.String("postgres", os.Getenv("CAREFRONT_TEST_POSTGRES"), "PostgreSQL DSN (a schema is created and dropped)")
	synthea := flag.String("synthea", os.Getenv("CAREFRONT_SYNTHEA_DIR"), "folder of Synthea transaction Bundles")
	dur := flag.Duration("duration", 3*time.Second, "how long each cell runs")
	only := flag.String("databases", "sqlite,postgres", "which databases to measure")
	clientsFlag := flag.String("clients", "1,16", "concurrent clients, comma-separated")
	opsFlag := flag.String("ops", "exchange,refresh,read,trend", "which operations to measure")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	flag.Parse()
	ops = *opsFlag
	stopProfile, err := benchdb.CPUProfile(*cpuProfile)
	if err != nil {
		fail(err)
	}
	defer stopProfile()
	slog.SetDefault(slog.New(slog.DiscardHandler)) // zitadel's request logs
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
	ctx := context.Background()
	fmt.Printf("latency in ms, operations/s; %s per cell\n\n", *dur)
	fmt.Printf("%-9s %-22s %-24s %7s %8s %8s %9s\n", "database", "operation", "path", "clients", "p50", "p99", "ops/s")
	for _, d := range []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres} {
		if !strings.Contains(*only, string(d)) {
			continue
		}
		if d == sqldb.Postgres && *pg == "" {
			fail(fmt.Errorf("PostgreSQL asked for but no DSN: set -postgres or CAREFRONT_TEST_POSTGRES"))
		}
		if err := bench(ctx, d, *pg, *synthea, clients, *dur); err != nil {
			stopProfile()
			fail(err)
		}
	}
}

// ops names the operations to measure (-ops).
var ops string

func fail(err error) {
	fmt.Fprintln(os.Stderr, "smartbench:", err)
	os.Exit(1)
}

// site is one database with the fixtures, an app connected to the
// patient with the most A1c results, and carefront's token endpoint and
// FHIR API on a loopback HTTP server.
type site struct {
	db      *sqldb.DB
	st      *store.Store
	flow    *oauth.Flow
	app     *oauth.Client
	srv     *httptest.Server
	patient string
	obs     []string
	most    int
	aw      *audit.Writer
	close   func()
}

func newSite(ctx context.Context, d sqldb.Dialect, pg, dir string, durable bool) (*site, error) {
	db, cleanup, err := benchdb.Fresh(ctx, d, pg, durable)
	if err != nil {
		return nil, err
	}
	s := &site{db: db, st: store.New(db)}
	s.close = cleanup
	if _, _, err := benchdb.Import(ctx, db, dir); err != nil {
		cleanup()
		return nil, err
	}
	if s.patient, s.most, s.obs, err = benchdb.MostA1c(ctx, s.st); err != nil {
		cleanup()
		return nil, err
	}
	sig, _ := audit.NewSigner(make([]byte, 32))
	s.aw = audit.NewWriter(db, audit.Options{Signer: sig, Observer: "smartbench", CheckpointEvery: 1000})
	sk, _ := seal.Generate()
	clients := &oauth.Clients{DB: db, Audit: s.aw}
	if s.app, _, err = clients.Add(ctx, oauth.NewClient{Name: "Bench", Kind: oauth.KindPublic, RedirectURIs: []string{redirect}, Reviewed: true, By: "bench"}); err != nil {
		return nil, err
	}
	if err := db.Write(ctx, func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO account (id, kind, email, patient_id, created) VALUES ('bench', 'person', 'bench@example.com', ?, 0)", s.patient)
		return err
	}); err != nil {
		return nil, err
	}
	s.flow = &oauth.Flow{DB: db, Audit: s.aw}
	s.srv = httptest.NewUnstartedServer(nil)
	base := "http://" + s.srv.Listener.Addr().String()
	_, h, err := oauth.New(oauth.Options{Issuer: base, Flow: s.flow, Clients: clients, Keys: &oauth.Keys{DB: db, Seal: sk}, LoginPath: "/login"})
	if err != nil {
		return nil, err
	}
	gw := &clinical.Gateway{Source: s.st, Audit: s.aw, Policies: &access.Store{DB: db, Audit: s.aw}}
	mux := http.NewServeMux()
	mux.Handle("/oauth/", h)
	mux.Handle("/fhir/R4/", &fhirapi.Handler{Flow: s.flow, Gateway: gw, Clients: clients, Base: base + "/fhir/R4"})
	mux.HandleFunc("GET /plain/Observation/{id}", func(w http.ResponseWriter, r *http.Request) {
		res, err := s.st.Read(r.Context(), "Observation", r.PathValue("id"))
		if err != nil {
			http.Error(w, "not found", 404)
			return
		}
		w.Header().Set("Content-Type", "application/fhir+json")
		w.Write(res.Raw)
	})
	mux.HandleFunc("GET /plain/Observation", func(w http.ResponseWriter, r *http.Request) {
		q, _ := trendQuery(s.patient)
		page, err := s.st.Search(r.Context(), q)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		json.NewEncoder(w).Encode(len(page.Matches))
	})
	s.srv.Config.Handler = mux
	s.srv.Start()
	s.close = func() { s.srv.Close(); s.aw.Close(ctx); cleanup() }
	return s, nil
}

// code makes an approved request with a code, as the portal's screen and
// the authorize callback would, and returns the code.
func (s *site) code(ctx context.Context, scopes string) (string, error) {
	ss, err := oauth.ParseScopes(scopes)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256([]byte(verifier))
	r, err := s.flow.CreateRequest(ctx, oauth.Request{ClientID: s.app.ID, RedirectURI: redirect, Scopes: ss, State: "s", Nonce: "n",
		Challenge: base64.RawURLEncoding.EncodeToString(h[:]), ResponseMode: "query"})
	if err != nil {
		return "", err
	}
	if _, _, err := s.flow.Approve(ctx, r.ID, oauth.Approval{Account: "bench", Patient: s.patient, Scopes: ss, AuthTime: time.Now()}); err != nil {
		return "", err
	}
	var b [24]byte
	for i := range b {
		b[i] = byte(rand.IntN(256))
	}
	code := base64.RawURLEncoding.EncodeToString(b[:])
	return code, s.flow.SaveCode(ctx, r.ID, code)
}

var httpClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// token posts a token request and returns the response fields.
func (s *site) token(form url.Values) (map[string]any, error) {
	res, err := httpClient.Post(s.srv.URL+oauth.PathToken, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		return nil, fmt.Errorf("token endpoint: %d %s", res.StatusCode, b)
	}
	var out map[string]any
	return out, json.Unmarshal(b, &out)
}

func (s *site) exchange(code string) (map[string]any, error) {
	return s.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "client_id": {s.app.ID}, "code_verifier": {verifier}})
}

func (s *site) get(path, token string) error {
	req, _ := http.NewRequest(http.MethodGet, s.srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		return fmt.Errorf("GET %s: %d", path, res.StatusCode)
	}
	return nil
}

// trendQuery is the lab-trend search of the patient's A1c results.
func trendQuery(patient string) (*fhir.Query, error) {
	return fhir.ParseQuery("Observation", url.Values{"patient": {patient}, "code": {"http://loinc.org|4548-4"}, "_sort": {"date"}}, false)
}

func bench(ctx context.Context, d sqldb.Dialect, pg, dir string, clients []int, dur time.Duration) error {
	s, err := newSite(ctx, d, pg, dir, true)
	if err != nil {
		return err
	}
	defer s.close()
	nd, err := newSite(ctx, d, pg, dir, false)
	if err != nil {
		return err
	}
	defer nd.close()
	row := func(op, path string, c int, p50, p99, rate float64) {
		fmt.Printf("%-9s %-22s %-24s %7d %8.3f %8.3f %9.0f\n", d, op, path, c, p50, p99, rate)
	}

	// Code exchanges: each worker trades codes made beforehand.
	for _, c := range clients {
		if !strings.Contains(ops, "exchange") {
			break
		}
		n := 300 * c
		if n > 2400 {
			n = 2400
		}
		codes := make(chan string, n)
		for range n {
			code, err := s.code(ctx, "openid fhirUser launch/patient offline_access patient/*.rs")
			if err != nil {
				return err
			}
			codes <- code
		}
		close(codes)
		p50, p99, rate, err := benchdb.Drain(c, codes, func(code string) error { _, err := s.exchange(code); return err })
		if err != nil {
			return fmt.Errorf("code exchange: %w", err)
		}
		row("code exchange", "token endpoint", c, p50, p99, rate)
	}

	// Refresh rotations: each worker rotates its own refresh token.
	for _, c := range clients {
		if !strings.Contains(ops, "refresh") {
			break
		}
		tokens := make([]string, c)
		for i := range tokens {
			code, err := s.code(ctx, "launch/patient offline_access patient/*.rs")
			if err != nil {
				return err
			}
			t, err := s.exchange(code)
			if err != nil {
				return err
			}
			tokens[i] = t["refresh_token"].(string)
		}
		p50, p99, rate, err := benchdb.Run(c, dur, func(i int, _ *rand.Rand) error {
			t, err := s.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokens[i]}, "client_id": {s.app.ID}})
			if err != nil {
				return err
			}
			tokens[i] = t["refresh_token"].(string)
			return nil
		})
		if err != nil {
			return fmt.Errorf("refresh: %w", err)
		}
		row("refresh rotation", "token endpoint", c, p50, p99, rate)
	}

	access := func(site *site) (string, error) {
		code, err := site.code(ctx, "launch/patient patient/*.rs")
		if err != nil {
			return "", err
		}
		t, err := site.exchange(code)
		if err != nil {
			return "", err
		}
		return t["access_token"].(string), nil
	}
	tok, err := access(s)
	if err != nil {
		return err
	}
	ndTok, err := access(nd)
	if err != nil {
		return err
	}
	trend := "Observation?patient=" + s.patient + "&code=http://loinc.org|4548-4&_sort=date"
	q, _ := trendQuery(s.patient)
	type path struct {
		name string
		fn   func(r *rand.Rand) error
	}
	for _, op := range []struct {
		name, key string
		paths     []path
	}{
		{"read by id", "read", []path{
			{"store", func(r *rand.Rand) error {
				_, err := s.st.Read(ctx, "Observation", s.obs[r.IntN(len(s.obs))])
				return err
			}},
			{"store over HTTP", func(r *rand.Rand) error { return s.get("/plain/Observation/"+s.obs[r.IntN(len(s.obs))], "") }},
			{"API, durable audit", func(r *rand.Rand) error { return s.get("/fhir/R4/Observation/"+s.obs[r.IntN(len(s.obs))], tok) }},
			{"API, commits not durable", func(r *rand.Rand) error { return nd.get("/fhir/R4/Observation/"+nd.obs[r.IntN(len(nd.obs))], ndTok) }},
		}},
		{"A1c trend", "trend", []path{
			{"store", func(*rand.Rand) error { _, err := s.st.Search(ctx, q); return err }},
			{"store over HTTP", func(*rand.Rand) error { return s.get("/plain/Observation", "") }},
			{"API, durable audit", func(*rand.Rand) error { return s.get("/fhir/R4/"+trend, tok) }},
			{"API, commits not durable", func(*rand.Rand) error { return nd.get("/fhir/R4/"+trend, ndTok) }},
		}},
	} {
		if !strings.Contains(ops, op.key) {
			continue
		}
		for _, c := range clients {
			for _, p := range op.paths {
				p50, p99, rate, err := benchdb.Run(c, dur, func(_ int, r *rand.Rand) error { return p.fn(r) })
				if err != nil {
					return fmt.Errorf("%s %s: %w", op.name, p.name, err)
				}
				row(op.name, p.name, c, p50, p99, rate)
			}
		}
	}
	fmt.Printf("(%s: patient with %d A1c results, %d observations)\n", d, s.most, len(s.obs))
	return nil
}
