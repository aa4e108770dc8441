package fhirapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"carefront/internal/access"
	"carefront/internal/audit"
	"carefront/internal/audit/audittest"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/fhir"
	"carefront/internal/fhirapi"
	"carefront/internal/oauth"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

const category = "http://terminology.hl7.org/CodeSystem/observation-category"

type fixture struct {
	db     *sqldb.DB
	srv    *httptest.Server
	flow   *oauth.Flow
	client *oauth.Client
}

func setup(t *testing.T, db *sqldb.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	st := store.New(db)
	obs := func(id, patient, cat string) string {
		return fmt.Sprintf(`{"resource":{"resourceType":"Observation","id":"%s","status":"final","category":[{"coding":[{"system":"%s","code":"%s"}]}],
			"code":{"text":"%s"},"subject":{"reference":"Patient/%s"},"effectiveDateTime":"2026-01-01"},"request":{"method":"PUT","url":"Observation/%s"}}`, id, category, cat, id, patient, id)
	}
	b, err := fhir.ParseBundle(json.RawMessage(`{"resourceType":"Bundle","type":"transaction","entry":[
		{"resource":{"resourceType":"Patient","id":"pa"},"request":{"method":"PUT","url":"Patient/pa"}},
		{"resource":{"resourceType":"Patient","id":"pb"},"request":{"method":"PUT","url":"Patient/pb"}},` +
		obs("pa-lab", "pa", "laboratory") + "," + obs("pa-vital", "pa", "vital-signs") + "," + obs("pb-lab", "pb", "laboratory") + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Process(ctx, b, store.BundleOptions{}); err != nil {
		t.Fatal(err)
	}
	sig, _ := audit.NewSigner(make([]byte, 32))
	aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test"})
	t.Cleanup(func() { aw.Close(ctx) })
	reg := &oauth.Clients{DB: db, Audit: aw}
	c, _, err := reg.Add(ctx, oauth.NewClient{Name: "Health Diary", Kind: oauth.KindPublic, RedirectURIs: []string{"https://diary.example/cb"},
		Origins: []string{"https://diary.example"}, Reviewed: true, By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Write(ctx, func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO account (id, kind, email, patient_id, created) VALUES ('acct-pa', 'person', 'pa@example.com', 'pa', 0)")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	flow := &oauth.Flow{DB: db, Audit: aw}
	srv := httptest.NewServer(nil)
	t.Cleanup(srv.Close)
	gw := &clinical.Gateway{Source: st, Audit: aw, Policies: &access.Store{DB: db, Audit: aw}}
	mux := http.NewServeMux()
	mux.Handle("/fhir/R4/", &fhirapi.Handler{Flow: flow, Gateway: gw, Clients: reg, Base: srv.URL + "/fhir/R4"})
	srv.Config.Handler = mux
	return &fixture{db: db, srv: srv, flow: flow, client: c}
}

// token connects the app to pa's record with scopes and returns the
// access token and its grant.
func (f *fixture) token(t *testing.T, scopes string) (string, *oauth.Grant) {
	t.Helper()
	ctx := context.Background()
	ss, err := oauth.ParseScopes(scopes)
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.flow.CreateRequest(ctx, oauth.Request{ClientID: f.client.ID, RedirectURI: "https://diary.example/cb", Scopes: ss, State: "s", Challenge: "c", ResponseMode: "query"})
	if err != nil {
		t.Fatal(err)
	}
	g, _, err := f.flow.Approve(ctx, r.ID, oauth.Approval{Account: "acct-pa", Patient: "pa", Scopes: ss})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.flow.SaveCode(ctx, r.ID, "code-"+r.ID); err != nil {
		t.Fatal(err)
	}
	_, tok, err := f.flow.Exchange(ctx, "code-"+r.ID, func(*oauth.Request) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	return tok.Access, g
}

func (f *fixture) get(t *testing.T, token, path string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/fhir/R4/"+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(b, &out)
	return resp.StatusCode, out, resp.Header
}

func ids(bundle map[string]any) []string {
	var out []string
	entries, _ := bundle["entry"].([]any)
	for _, e := range entries {
		r := e.(map[string]any)["resource"].(map[string]any)
		out = append(out, r["id"].(string))
	}
	sort.Strings(out)
	return out
}

// TestG10LimitedAccess: every request needs an active token;
// a type the token does not grant is 403 with an OperationOutcome;
// another patient's record answers as missing; the audit record names
// the app.
func TestG10LimitedAccess(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := setup(t, db)
		if status, out, hdr := f.get(t, "", "Observation"); status != 401 || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") || out["resourceType"] != "OperationOutcome" {
			t.Errorf("no token: %d %v %v", status, hdr, out)
		}
		if status, _, _ := f.get(t, "made-up", "Observation"); status != 401 {
			t.Errorf("a made-up token: %d", status)
		}
		tok, g := f.token(t, "launch/patient patient/Observation.rs")
		status, bundle, _ := f.get(t, tok, "Observation")
		if got := strings.Join(ids(bundle), ","); status != 200 || bundle["type"] != "searchset" || got != "pa-lab,pa-vital" {
			t.Errorf("search: %d %s", status, got)
		}
		if _, _, ev := audittest.Last(t, db); !strings.Contains(ev, f.client.ID) {
			t.Errorf("the search's audit record does not name the app: %s", ev)
		}
		if status, out, _ := f.get(t, tok, "Observation/pa-lab"); status != 200 || out["id"] != "pa-lab" {
			t.Errorf("read: %d %v", status, out)
		}
		if status, out, _ := f.get(t, tok, "Observation/pb-lab"); status != 404 || out["resourceType"] != "OperationOutcome" {
			t.Errorf("another patient's result: %d %v", status, out)
		}
		if status, _, _ := f.get(t, tok, "Observation?patient=pb"); status != 200 {
			t.Errorf("searching another patient: %d", status)
		} else if _, b, _ := f.get(t, tok, "Observation?patient=pb"); len(ids(b)) != 0 {
			t.Errorf("searching another patient found %v", ids(b))
		}
		for _, p := range []string{"Condition", "Patient/pa", "MedicationRequest?patient=pa"} {
			if status, out, _ := f.get(t, tok, p); status != 403 || out["resourceType"] != "OperationOutcome" {
				t.Errorf("%s, not granted: %d %v", p, status, out)
			}
		}
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/fhir/R4/Observation", strings.NewReader(`{"resourceType":"Observation"}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != 405 {
			t.Errorf("a write: %d", resp.StatusCode)
		}
		// Disconnected: the very next request fails.
		if err := f.flow.RevokeGrant(context.Background(), g.ID, "pa", "Person/acct-pa"); err != nil {
			t.Fatal(err)
		}
		if status, _, _ := f.get(t, tok, "Observation"); status != 401 {
			t.Errorf("after disconnect: %d", status)
		}
	})
}

// TestSTU2GranularScopes: a category grant narrows searches before they
// run and refuses reading a resource outside it by id.
func TestSTU2GranularScopes(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := setup(t, db)
		tok, _ := f.token(t, "patient/Observation.rs?category="+category+"|laboratory")
		_, bundle, _ := f.get(t, tok, "Observation?_total=accurate")
		if got := strings.Join(ids(bundle), ","); got != "pa-lab" || bundle["total"] != float64(1) {
			t.Errorf("granular search: %s, total %v", got, bundle["total"])
		}
		if _, b, _ := f.get(t, tok, "Observation?category=vital-signs"); len(ids(b)) != 0 {
			t.Errorf("asking for another category found %v", ids(b))
		}
		if status, _, _ := f.get(t, tok, "Observation/pa-vital"); status != 404 {
			t.Errorf("reading outside the category: %d", status)
		}
		if status, _, _ := f.get(t, tok, "Observation/pa-lab"); status != 200 {
			t.Errorf("reading inside the category: %d", status)
		}
		// Recategorized since: its earlier version, in the category, is
		// not read through a vread either.
		b, _ := fhir.ParseBundle(json.RawMessage(`{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Observation","id":"pa-lab","status":"final",
			"category":[{"coding":[{"system":"` + category + `","code":"social-history"}]}],"code":{"text":"x"},"subject":{"reference":"Patient/pa"}},"request":{"method":"PUT","url":"Observation/pa-lab"}}]}`))
		if _, err := store.New(db).Process(context.Background(), b, store.BundleOptions{}); err != nil {
			t.Fatal(err)
		}
		if status, _, _ := f.get(t, tok, "Observation/pa-lab/_history/1"); status != 404 {
			t.Errorf("vread of a version in the category, now outside it: %d", status)
		}
		// A code-only category matches any system.
		tok2, _ := f.token(t, "patient/Observation.rs?category=vital-signs")
		if _, b, _ := f.get(t, tok2, "Observation"); strings.Join(ids(b), ",") != "pa-vital" {
			t.Errorf("code-only category: %v", ids(b))
		}
	})
}

// TestSTU2Discovery: the CapabilityStatement and the SMART configuration
// need no token and say only what is offered.
func TestSTU2Discovery(t *testing.T) {
	f := setup(t, sqldbtest.Open(t, sqldb.SQLite))
	status, cs, _ := f.get(t, "", "metadata")
	if status != 200 || cs["resourceType"] != "CapabilityStatement" || cs["fhirVersion"] != "4.0.1" {
		t.Fatalf("metadata: %d %v", status, cs)
	}
	b, _ := json.Marshal(cs)
	for _, want := range []string{`"type":"Observation"`, `{"name":"category","type":"token"}`, `{"name":"patient","type":"reference"}`, `"code":"SMART-on-FHIR"`, f.srv.URL + "/oauth/token"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metadata lacks %s", want)
		}
	}
	if strings.Contains(string(b), `"type":"AuditEvent"`) || strings.Contains(string(b), `"code":"create"`) {
		t.Errorf("metadata offers what is not served: %s", b)
	}
	status, sc, hdr := f.get(t, "", ".well-known/smart-configuration")
	caps, _ := json.Marshal(sc["capabilities"])
	if status != 200 || hdr.Get("Content-Type") != "application/json" || sc["token_endpoint"] != f.srv.URL+"/oauth/token" ||
		!strings.Contains(string(caps), `"permission-v2"`) || !strings.Contains(string(caps), `"launch-ehr"`) || strings.Contains(string(caps), "context-ehr-encounter") ||
		sc["management_endpoint"] != f.srv.URL+"/sharing/apps" {
		t.Errorf("smart-configuration: %d %v", status, sc)
	}
	// Types outside the API answer as unknown.
	tok, _ := f.token(t, "patient/*.rs")
	if status, _, _ := f.get(t, tok, "AuditEvent"); status != 404 {
		t.Errorf("AuditEvent through the API: %d", status)
	}
}

// TestCORS: a browser app at a registered origin may call the API (no
// credentials: bearer tokens only); any other origin gets no CORS
// headers, and its preflight is refused.
func TestCORS(t *testing.T) {
	f := setup(t, sqldbtest.Open(t, sqldb.SQLite))
	tok, _ := f.token(t, "patient/Observation.rs")
	do := func(method, origin, path string, hdr ...string) *http.Response {
		req, _ := http.NewRequest(method, f.srv.URL+"/fhir/R4/"+path, nil)
		req.Header.Set("Origin", origin)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	pre := do(http.MethodOptions, "https://diary.example", "Observation", "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "authorization")
	if pre.StatusCode != 204 || pre.Header.Get("Access-Control-Allow-Origin") != "https://diary.example" ||
		!strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "Authorization") || pre.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("preflight from the app's origin: %d %v", pre.StatusCode, pre.Header)
	}
	if r := do(http.MethodOptions, "https://evil.example", "Observation", "Access-Control-Request-Method", "GET"); r.StatusCode != 403 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %d %v", r.StatusCode, r.Header)
	}
	for _, tc := range []struct {
		origin, token string
		status        int
		allowed       bool
	}{{"https://diary.example", tok, 200, true}, {"https://diary.example", "", 401, true}, {"https://evil.example", tok, 200, false}} {
		r := do(http.MethodGet, tc.origin, "Observation", "Authorization", "Bearer "+tc.token)
		if r.StatusCode != tc.status || (r.Header.Get("Access-Control-Allow-Origin") == tc.origin) != tc.allowed {
			t.Errorf("GET from %s: %d, allow-origin %q", tc.origin, r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"))
		}
	}
}
