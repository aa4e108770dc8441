// Command decidebench measures the access decision with caregiver
// grants: access.Decide for a patient with 100 grants and 1,000 labelled
// resources (warm: the policy compiled and the version read for the
// request; and the policy read again right after an invalidation), a
// caregiver's results view against the patient's own on the demo
// population, a parent's search of a teenager's record narrowed by
// indexed labels against one decided after it runs, and, with -pg, the
// time from a revocation through one carefront instance to the first
// refused request at another on the same PostgreSQL.
//
//	go run ./bench/decidebench [-pg postgres://...]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"carefront/bench/benchdb"
	"carefront/internal/access"
	"carefront/internal/audit"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/consent"
	"carefront/internal/demo"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
	"carefront/internal/views"
)

func main() {
	pg := flag.String("pg", os.Getenv("CAREFRONT_TEST_POSTGRES"), "PostgreSQL DSN for the two-instance revocation figure (empty: skipped)")
	flag.Parse()
	ctx := context.Background()
	fmt.Printf("access decisions with caregiver grants, GOMAXPROCS=%d\n\n", runtime.GOMAXPROCS(0))
	decide(ctx)
	fmt.Println()
	resultsView(ctx)
	fmt.Println()
	narrowing(ctx)
	if *pg != "" {
		fmt.Println()
		revocation(ctx, *pg)
	}
}

// decide times Decide on 1,000 targets for a patient whose policy holds
// 100 grants, as the caregiver holding the last of them.
func decide(ctx context.Context) {
	now := time.Now()
	pol := &access.Policy{Version: 7, Wait: map[string]int{}}
	for i := range 100 {
		kinds, _ := access.KindTypes(access.Presets["medications-visits"])
		if i%2 == 0 {
			kinds = nil
		}
		pol.Proxies = append(pol.Proxies, access.Proxy{GrantID: fmt.Sprint("g", i), Account: fmt.Sprint("Person/c", i), Kinds: kinds,
			Until: now.AddDate(1, 0, 0), PatientBirth: now.AddDate(-15, 0, 0), Granted: now.AddDate(-1, 0, 0)})
	}
	labels := [][]string{nil, {"http://terminology.hl7.org/CodeSystem/v3-ActCode|PSY"}, {"http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R"}, nil}
	types := []string{"Observation", "Encounter", "MedicationRequest", "Condition"}
	targets := make([]access.Target, 1000)
	for i := range targets {
		targets[i] = access.Target{Type: types[i%4], ID: fmt.Sprint(i), Patients: []string{"p"}, Labels: labels[i%4]}
	}
	self := access.Principal{User: "Person/p", Patient: "p", Policy: pol, At: now}
	care := access.Principal{User: "Person/c99", Patient: "p", Caregiver: true, Policy: pol, At: now}
	run := func(name string, p func() access.Principal) {
		r := testing.Benchmark(func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				pr := p()
				access.Decide(ctx, pr, access.Read, targets[i%len(targets)])
			}
		})
		fmt.Printf("%-58s %8.0f ns/op %6d allocs/op\n", name, float64(r.NsPerOp()), r.AllocsPerOp())
	}
	fmt.Println("Decide, one read, a patient with 100 grants and 1,000 labelled resources")
	run("patient's own record", func() access.Principal { return self })
	proxy := pol.ProxyFor(care.User)
	run("caregiver (grant resolved once per request)", func() access.Principal { c := care; c.Proxy = proxy; return c })
	run("caregiver (grant looked up per decision)", func() access.Principal { c := care; c.Proxy = pol.ProxyFor(c.User); return c })

	db, done, err := benchdb.Fresh(ctx, sqldb.SQLite, "", true)
	if err != nil {
		log.Fatal(err)
	}
	defer done()
	grants := &consent.Grants{DB: db, Audit: audit.NewWriter(db, audit.Options{Observer: "bench", Signer: signer()})}
	st := &access.Store{DB: db, Loaders: []access.Loader{grants.LoadPolicy}}
	if err := db.Write(ctx, func(tx *sqldb.Tx) error {
		for i := range 100 {
			if _, err := tx.Exec(ctx, `INSERT INTO account (id, kind, email, created, email_verified) VALUES (?, 'person', ?, 0, 0)`, fmt.Sprint("c", i), fmt.Sprintf("c%d@example.com", i)); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO proxy_grant (id, patient_id, caregiver_email, caregiver_account, preset, kinds, until_at, created, created_by, accepted_at)
				VALUES (?, 'p', ?, ?, 'full', '', ?, 0, 'bench', 0)`, fmt.Sprint("g", i), fmt.Sprintf("c%d@example.com", i), fmt.Sprint("c", i), now.AddDate(1, 0, 0).UnixMicro()); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("\naccess.Store.Policy, the same patient, embedded SQLite")
	for _, c := range []struct {
		name string
		bump bool
	}{{"warm: version read, compiled policy reused", false}, {"after an invalidation: version read, policy read again", true}} {
		r := testing.Benchmark(func(b *testing.B) {
			for b.Loop() {
				if c.bump {
					b.StopTimer()
					db.Write(ctx, func(tx *sqldb.Tx) error { return access.Bump(ctx, tx, "p") })
					b.StartTimer()
				}
				if _, err := st.Policy(ctx, "p"); err != nil {
					b.Fatal(err)
				}
			}
		})
		fmt.Printf("%-58s %8.1f µs/op\n", c.name, float64(r.NsPerOp())/1000)
	}
}

// resultsView times the results view of Maria's record built for her and
// for a caregiver with full access, side by side.
func resultsView(ctx context.Context) {
	db, done, err := benchdb.Fresh(ctx, sqldb.SQLite, "", false)
	if err != nil {
		log.Fatal(err)
	}
	defer done()
	aw := audit.NewWriter(db, audit.Options{Observer: "bench", Signer: signer()})
	defer aw.Close(ctx)
	if _, err := demo.Seed(ctx, store.New(db), aw, time.Now()); err != nil {
		log.Fatal(err)
	}
	if err := addAccount(ctx, db); err != nil {
		log.Fatal(err)
	}
	grants := &consent.Grants{DB: db, Audit: aw}
	if _, err := grants.Grant(ctx, consent.NewGrant{Patient: demo.Maria, Email: "care@example.com", Preset: "full", Until: time.Now().AddDate(1, 0, 0), By: "bench"}); err != nil {
		log.Fatal(err)
	}
	pol := &access.Store{DB: db, Audit: aw, Loaders: []access.Loader{grants.LoadPolicy}}
	gw := &clinical.Gateway{Source: store.New(db), Audit: aw, Policies: pol}
	dict, err := views.LoadDictionary("")
	if err != nil {
		log.Fatal(err)
	}
	b := &views.Builder{Gateway: gw, Dict: dict, Sequential: true}
	own := clinical.Request{Principal: access.Principal{User: "Person/maria", Patient: demo.Maria}}
	care := clinical.Request{Principal: access.Principal{User: "Person/care", Patient: demo.Maria, Caregiver: true}}
	time1 := func(req clinical.Request) float64 {
		r := testing.Benchmark(func(tb *testing.B) {
			for tb.Loop() {
				v, err := b.Results(ctx, req, views.ResultsOptions{Lang: "en"})
				if err != nil || len(v.Groups) == 0 {
					tb.Fatalf("results: %v", err)
				}
			}
		})
		return float64(r.NsPerOp()) / 1e6
	}
	o, c := time1(own), time1(care)
	fmt.Println("results view of Maria's record (demo population, embedded SQLite, audited)")
	fmt.Printf("%-58s %8.2f ms/op\n", "the patient herself", o)
	fmt.Printf("%-58s %8.2f ms/op\n", "a caregiver with full access", c)
	fmt.Printf("caregiver/own: %.2fx\n", c/o)
}

// unnarrowed is the embedded store ignoring the labels a search should
// leave out, as a source that cannot narrow does: the gateway's check of
// each returned resource is then the only guard.
type unnarrowed struct{ *store.Store }

func (u unnarrowed) Search(ctx context.Context, q *fhir.Query) (*fhir.Page, error) {
	wide := *q
	wide.ExcludeLabels = nil
	return u.Store.Search(ctx, &wide)
}

// narrowing times a parent's first page of a 15-year-old's diagnoses
// (1,000, every other one mental health) with the sensitive ones left
// out in SQL by their indexed labels, against the same search decided
// one resource at a time after it runs.
func narrowing(ctx context.Context) {
	db, done, err := benchdb.Fresh(ctx, sqldb.SQLite, "", false)
	if err != nil {
		log.Fatal(err)
	}
	defer done()
	aw := audit.NewWriter(db, audit.Options{Observer: "bench", Signer: signer()})
	defer aw.Close(ctx)
	labels, err := consent.LoadLabels()
	if err != nil {
		log.Fatal(err)
	}
	st := store.New(db)
	st.Labels = labels
	now := time.Now().UTC()
	birth := now.AddDate(-15, 0, 0)
	entries := []string{fmt.Sprintf(`{"resource":{"resourceType":"Patient","id":"teen","birthDate":"%s"},"request":{"method":"PUT","url":"Patient/teen"}}`, birth.Format("2006-01-02"))}
	for i := range 1000 {
		code := "J45.909"
		if i%2 == 0 {
			code = "F32.9"
		}
		entries = append(entries, fmt.Sprintf(`{"resource":{"resourceType":"Condition","id":"c%d","code":{"coding":[{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"%s"}]},"subject":{"reference":"Patient/teen"},"recordedDate":"%s"},"request":{"method":"PUT","url":"Condition/c%d"}}`,
			i, code, now.Add(-time.Duration(i)*time.Hour).Format(time.RFC3339), i))
	}
	b, err := fhir.ParseBundle(json.RawMessage(`{"resourceType":"Bundle","type":"transaction","entry":[` + strings.Join(entries, ",") + `]}`))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := st.Process(ctx, b, store.BundleOptions{}); err != nil {
		log.Fatal(err)
	}
	parent := clinical.Request{Principal: access.Principal{User: "Person/parent", Patient: "teen", At: now,
		Proxy: &access.Proxy{Account: "Person/parent", Until: now.AddDate(1, 0, 0), PatientBirth: birth}}}
	page := func(src clinical.Source) (ms float64, shown int, total string) {
		gw := &clinical.Gateway{Source: src, Audit: aw, Labeler: labels}
		r := testing.Benchmark(func(tb *testing.B) {
			for tb.Loop() {
				q, err := fhir.ParseQuery("Condition", map[string][]string{"_sort": {"-recorded-date"}, "_count": {"50"}, "_total": {"accurate"}}, false)
				if err != nil {
					tb.Fatal(err)
				}
				p, err := gw.Search(ctx, parent, q)
				if err != nil {
					tb.Fatal(err)
				}
				shown, total = len(p.Matches), "withheld"
				if p.Total != nil {
					total = fmt.Sprint(*p.Total)
				}
			}
		})
		return float64(r.NsPerOp()) / 1e6, shown, total
	}
	nm, ns, nt := page(st)
	am, as, at := page(unnarrowed{st})
	fmt.Println("a parent's first page (50) of a 15-year-old's 1,000 diagnoses, half mental health (embedded SQLite, audited)")
	fmt.Printf("%-58s %8.2f ms/op  %d shown, total %s\n", "narrowed by indexed labels", nm, ns, nt)
	fmt.Printf("%-58s %8.2f ms/op  %d shown, total %s\n", "decided after the search only", am, as, at)
	fmt.Printf("narrowed/after: %.2fx time per page, %.2fx time per record shown, %.1fx records shown per page\n",
		nm/am, (nm/float64(max(ns, 1)))/(am/float64(max(as, 1))), float64(ns)/float64(max(as, 1)))
}

// revocation measures, with two instances on one PostgreSQL, the time
// from a revocation committed through the first to the first refused
// request at the second, which had served the caregiver a moment before.
func revocation(ctx context.Context, pg string) {
	db1, db2, done, err := benchdb.FreshPair(ctx, pg)
	if err != nil {
		log.Fatal(err)
	}
	defer done()
	aw := audit.NewWriter(db1, audit.Options{Observer: "bench-1", Signer: signer()})
	defer aw.Close(ctx)
	if err := addAccount(ctx, db1); err != nil {
		log.Fatal(err)
	}
	g1 := &consent.Grants{DB: db1, Audit: aw}
	st2 := &access.Store{DB: db2, Loaders: []access.Loader{(&consent.Grants{DB: db2}).LoadPolicy}}
	target := access.Target{Type: "Observation", ID: "o", Patients: []string{"p"}}
	var total time.Duration
	const rounds = 20
	for range rounds {
		g, err := g1.Grant(ctx, consent.NewGrant{Patient: "p", Email: "care@example.com", Preset: "full", Until: time.Now().AddDate(1, 0, 0), By: "bench"})
		if err != nil {
			log.Fatal(err)
		}
		decide := func() bool {
			pol, err := st2.Policy(ctx, "p")
			if err != nil {
				log.Fatal(err)
			}
			p := access.Principal{User: "Person/care", Patient: "p", Caregiver: true, Policy: pol, Proxy: pol.ProxyFor("Person/care"), At: time.Now()}
			return access.Decide(ctx, p, access.Read, target).Permit
		}
		if !decide() {
			log.Fatal("the second instance refuses a grant in force")
		}
		start := time.Now()
		if _, err := g1.Revoke(ctx, consent.Revocation{ID: g.ID, By: "bench"}); err != nil {
			log.Fatal(err)
		}
		if decide() {
			log.Fatal("the second instance's next request after the revocation was permitted")
		}
		total += time.Since(start)
	}
	fmt.Println("revocation through instance 1 to the first refused request at instance 2, one PostgreSQL")
	fmt.Printf("%-58s %8.2f ms (mean of %d; the refused request is always the next one)\n", "revoke committed + next request's policy and decision", float64(total.Microseconds())/1000/rounds, rounds)
}

// addAccount adds the caregiver's account.
func addAccount(ctx context.Context, db *sqldb.DB) error {
	return db.Write(ctx, func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO account (id, kind, email, created, email_verified) VALUES ('care', 'person', 'care@example.com', 0, 0)`)
		return err
	})
}

func signer() *audit.Signer {
	s, err := audit.NewSigner(make([]byte, 32))
	if err != nil {
		log.Fatal(err)
	}
	return s
}
