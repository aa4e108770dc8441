package upstream_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"

	"carefront/internal/apperr"
	"carefront/internal/clinical/store"
	"carefront/internal/clinical/upstream"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// ehr serves the embedded store over HTTP as an EHR would: a SMART
// configuration, a token endpoint that checks signed client assertions,
// and FHIR read and search that demand the token it issued.
type ehr struct {
	srv        *httptest.Server
	st         *store.Store
	pub        crypto.PublicKey
	alg        jose.SignatureAlgorithm
	tokenCalls atomic.Int32
	fhirCalls  atomic.Int32
	token      atomic.Value
	// slowType, when set, is a resource type whose searches answer only
	// after slowFor, as an EHR whose one service is stuck.
	slowType atomic.Value
	slowFor  time.Duration
}

func newEHR(t *testing.T, db *sqldb.DB, pub crypto.PublicKey, alg jose.SignatureAlgorithm) *ehr {
	e := &ehr{st: store.New(db), pub: pub, alg: alg}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fhir/.well-known/smart-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"token_endpoint": e.srv.URL + "/token"})
	})
	mux.HandleFunc("POST /token", e.tokenEndpoint)
	mux.HandleFunc("GET /fhir/{type}/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !e.authorized(w, r) {
			return
		}
		res, err := e.st.Read(r.Context(), r.PathValue("type"), r.PathValue("id"))
		if err != nil {
			oc, status := fhir.OutcomeJSON(err)
			w.WriteHeader(status)
			w.Write(oc)
			return
		}
		w.Write(res.Raw)
	})
	mux.HandleFunc("GET /fhir/{type}", func(w http.ResponseWriter, r *http.Request) {
		if !e.authorized(w, r) {
			return
		}
		if slow, _ := e.slowType.Load().(string); slow == r.PathValue("type") {
			select {
			case <-time.After(e.slowFor):
			case <-r.Context().Done():
				return
			}
		}
		q, err := fhir.ParseQuery(r.PathValue("type"), r.URL.Query(), false)
		var page *fhir.Page
		if err == nil {
			page, err = e.st.Search(r.Context(), q)
		}
		if err != nil {
			oc, status := fhir.OutcomeJSON(err)
			w.WriteHeader(status)
			w.Write(oc)
			return
		}
		json.NewEncoder(w).Encode(fhir.SearchBundle(e.srv.URL+"/fhir", q, page))
	})
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *ehr) tokenEndpoint(w http.ResponseWriter, r *http.Request) {
	e.tokenCalls.Add(1)
	r.ParseForm()
	fail := func(code string) {
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": code})
	}
	if r.Form.Get("grant_type") != "client_credentials" || r.Form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		fail("invalid_request")
		return
	}
	tok, err := jwt.ParseSigned(r.Form.Get("client_assertion"), []jose.SignatureAlgorithm{e.alg})
	if err != nil {
		fail("invalid_client")
		return
	}
	var claims jwt.Claims
	if err := tok.Claims(e.pub, &claims); err != nil {
		fail("invalid_client")
		return
	}
	if err := claims.Validate(jwt.Expected{Issuer: "carefront", Subject: "carefront", AnyAudience: jwt.Audience{e.srv.URL + "/token"}, Time: time.Now()}); err != nil || claims.ID == "" {
		fail("invalid_client")
		return
	}
	if r.Form.Get("scope") != "system/*.rs" {
		fail("invalid_scope")
		return
	}
	access := fmt.Sprintf("token-%d", e.tokenCalls.Load())
	e.token.Store(access)
	json.NewEncoder(w).Encode(map[string]any{"access_token": access, "token_type": "bearer", "expires_in": 300, "scope": "system/*.rs"})
}

func (e *ehr) authorized(w http.ResponseWriter, r *http.Request) bool {
	e.fhirCalls.Add(1)
	want, _ := e.token.Load().(string)
	if want == "" || r.Header.Get("Authorization") != "Bearer "+want {
		w.WriteHeader(http.StatusUnauthorized)
		return false
	}
	return true
}

func seed(t *testing.T, st *store.Store) {
	t.Helper()
	var entries []string
	for _, p := range []string{"pa", "pb"} {
		entries = append(entries, fmt.Sprintf(`{"resource":{"resourceType":"Patient","id":"%s"},"request":{"method":"PUT","url":"Patient/%s"}}`, p, p))
		for i := 1; i <= 5; i++ {
			entries = append(entries, fmt.Sprintf(`{"resource":{"resourceType":"Observation","id":"%s-o%d","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"4548-4"}]},"subject":{"reference":"Patient/%s"},"effectiveDateTime":"2024-0%d-01"},"request":{"method":"PUT","url":"Observation/%s-o%d"}}`, p, i, p, i, p, i))
		}
	}
	b, err := fhir.ParseBundle(json.RawMessage(`{"resourceType":"Bundle","type":"transaction","entry":[` + strings.Join(entries, ",") + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Process(context.Background(), b, store.BundleOptions{}); err != nil {
		t.Fatal(err)
	}
}

func query(t *testing.T, typ, raw string) *fhir.Query {
	t.Helper()
	vals, _ := url.ParseQuery(raw)
	q, err := fhir.ParseQuery(typ, vals, false)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func ids(rs []*fhir.Resource) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func TestBackendServicesAgainstTheEmbeddedStore(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, k := range []struct {
		name string
		key  crypto.Signer
		alg  jose.SignatureAlgorithm
	}{{"ES384", ec, jose.ES384}, {"RS384", rk, jose.RS384}} {
		t.Run(k.name, func(t *testing.T) {
			sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
				e := newEHR(t, db, k.key.Public(), k.alg)
				seed(t, e.st)
				c, err := upstream.New(upstream.Options{BaseURL: e.srv.URL + "/fhir", Backend: &upstream.Backend{ClientID: "carefront", Key: k.key, KeyID: "k1"}})
				if err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				r, err := c.Read(ctx, "Observation", "pa-o1")
				if err != nil || r.ID != "pa-o1" {
					t.Fatalf("read: %v", err)
				}
				if _, err := c.Read(ctx, "Observation", "nope"); apperr.CodeOf(err) != apperr.NotFound {
					t.Errorf("missing: %v", err)
				}
				// The compartment becomes a patient parameter upstream; pages
				// follow the server's next links.
				q := query(t, "Observation", "code=http://loinc.org|4548-4&_sort=date&_count=2")
				q.Compartment = "pb"
				var all []string
				for i := 0; ; i++ {
					page, err := c.Search(ctx, q)
					if err != nil {
						t.Fatalf("search page %d: %v", i, err)
					}
					all = append(all, ids(page.Matches)...)
					if page.Next == "" || i > 5 {
						break
					}
					q.Cursor = page.Next
				}
				if diff := cmp.Diff([]string{"pb-o1", "pb-o2", "pb-o3", "pb-o4", "pb-o5"}, all); diff != "" {
					t.Errorf("paged search (-want +got):\n%s", diff)
				}
				if n := e.tokenCalls.Load(); n != 1 {
					t.Errorf("token endpoint called %d times, want 1 (cached)", n)
				}
				// A cursor pointing anywhere but the upstream base is refused.
				q.Cursor = "aHR0cHM6Ly9ldmlsLmV4YW1wbGUvZmhpci9PYnNlcnZhdGlvbg"
				if _, err := c.Search(ctx, q); apperr.CodeOf(err) != apperr.Invalid {
					t.Errorf("foreign cursor: %v", err)
				}
				// A revoked token is replaced once, transparently.
				e.token.Store("revoked-by-the-ehr")
				if _, err := c.Read(ctx, "Patient", "pa"); err != nil {
					t.Errorf("after revocation: %v", err)
				}
				if n := e.tokenCalls.Load(); n != 2 {
					t.Errorf("token endpoint called %d times, want 2", n)
				}
			})
		})
	}
}

func TestWrongKeyIsUnavailableNotACrash(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		good, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		other, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		e := newEHR(t, db, good.Public(), jose.ES384)
		c, _ := upstream.New(upstream.Options{BaseURL: e.srv.URL + "/fhir", Backend: &upstream.Backend{ClientID: "carefront", Key: other}, Backoff: time.Millisecond})
		_, err := c.Read(context.Background(), "Patient", "pa")
		if apperr.CodeOf(err) != apperr.Unavailable {
			t.Fatalf("err = %v, want unavailable", err)
		}
		if e.fhirCalls.Load() != 0 {
			t.Errorf("FHIR endpoint called without a token")
		}
	})
}

func TestBadBackendKeysAreRefused(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	for name, k := range map[string]crypto.Signer{"P-256": p256, "RSA-1024": small} {
		if _, err := upstream.New(upstream.Options{BaseURL: "https://ehr.example/fhir", Backend: &upstream.Backend{ClientID: "c", Key: k}}); err == nil {
			t.Errorf("%s key accepted", name)
		}
	}
	if _, err := upstream.New(upstream.Options{BaseURL: "ftp://ehr.example"}); err == nil {
		t.Error("ftp base URL accepted")
	}
}

// flaky answers with the given statuses in turn, then 200 with a Patient.
func flaky(t *testing.T, delay time.Duration, statuses ...int) (*httptest.Server, *atomic.Int32) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(calls.Add(1))
		time.Sleep(delay)
		if n <= len(statuses) {
			w.WriteHeader(statuses[n-1])
			return
		}
		if r.Header.Get("Authorization") != "Bearer static" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"resourceType":"Patient","id":"pa"}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestRetriesBackoffAndCircuitBreaker(t *testing.T) {
	ctx := context.Background()
	t.Run("retries transient failures of reads", func(t *testing.T) {
		srv, calls := flaky(t, 0, 502, 503)
		c, _ := upstream.New(upstream.Options{BaseURL: srv.URL, Token: "static", Backoff: time.Millisecond})
		if _, err := c.Read(ctx, "Patient", "pa"); err != nil {
			t.Fatal(err)
		}
		if calls.Load() != 3 {
			t.Errorf("calls = %d, want 3", calls.Load())
		}
	})
	t.Run("does not retry a definite answer", func(t *testing.T) {
		srv, calls := flaky(t, 0, 400)
		c, _ := upstream.New(upstream.Options{BaseURL: srv.URL, Token: "static", Backoff: time.Millisecond})
		if _, err := c.Read(ctx, "Patient", "pa"); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("err = %v", err)
		}
		if calls.Load() != 1 {
			t.Errorf("calls = %d, want 1", calls.Load())
		}
	})
	t.Run("a slow server times out as unavailable", func(t *testing.T) {
		srv, _ := flaky(t, 300*time.Millisecond)
		c, _ := upstream.New(upstream.Options{BaseURL: srv.URL, Token: "static", Timeout: 50 * time.Millisecond, Retries: -1})
		start := time.Now()
		_, err := c.Read(ctx, "Patient", "pa")
		if apperr.CodeOf(err) != apperr.Unavailable {
			t.Fatalf("err = %v, want unavailable", err)
		}
		if took := time.Since(start); took > 250*time.Millisecond {
			t.Errorf("the call took %v; the timeout did not bound it", took)
		}
	})
	t.Run("the circuit opens after repeated failures and closes after a good trial", func(t *testing.T) {
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		srv, calls := flaky(t, 0, 500, 500, 500, 500)
		c, _ := upstream.New(upstream.Options{BaseURL: srv.URL, Token: "static", Retries: -1, BreakAfter: 2, BreakFor: time.Minute, Now: func() time.Time { return now }})
		for i := 0; i < 2; i++ {
			if _, err := c.Read(ctx, "Patient", "pa"); apperr.CodeOf(err) != apperr.Unavailable {
				t.Fatalf("call %d: %v", i, err)
			}
		}
		if _, err := c.Read(ctx, "Patient", "pa"); apperr.CodeOf(err) != apperr.Unavailable || calls.Load() != 2 {
			t.Fatalf("open circuit: err %v after %d calls; want a fast failure without calling", err, calls.Load())
		}
		now = now.Add(61 * time.Second)
		if _, err := c.Read(ctx, "Patient", "pa"); apperr.CodeOf(err) != apperr.Unavailable || calls.Load() != 3 {
			t.Fatalf("half-open trial: %v, calls %d", err, calls.Load())
		}
		if _, err := c.Read(ctx, "Patient", "pa"); calls.Load() != 3 || err == nil {
			t.Fatalf("after a failed trial the circuit should be open again: %v, calls %d", err, calls.Load())
		}
		now = now.Add(61 * time.Second)
		c.Read(ctx, "Patient", "pa") // the 4th 500
		now = now.Add(61 * time.Second)
		if _, err := c.Read(ctx, "Patient", "pa"); err != nil {
			t.Fatalf("recovered server: %v", err)
		}
		if _, err := c.Read(ctx, "Patient", "pa"); err != nil {
			t.Fatalf("closed circuit: %v", err)
		}
	})
	t.Run("a refused static token is unavailable, not retried", func(t *testing.T) {
		srv, calls := flaky(t, 0)
		c, _ := upstream.New(upstream.Options{BaseURL: srv.URL, Token: "wrong", Backoff: time.Millisecond})
		if _, err := c.Read(ctx, "Patient", "pa"); apperr.CodeOf(err) != apperr.Unavailable || calls.Load() != 1 {
			t.Errorf("err %v after %d calls", err, calls.Load())
		}
	})
}
