package oauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"carefront/internal/audit/audittest"
	"carefront/internal/oauth"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

type asFixture struct {
	*flowFixture
	srv    *httptest.Server
	server *oauth.Server
	http   *http.Client
}

func newAS(t *testing.T, db *sqldb.DB) *asFixture {
	t.Helper()
	f := newFlow(t, db)
	sk, err := seal.Generate()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(nil)
	t.Cleanup(srv.Close)
	s, h, err := oauth.New(oauth.Options{Issuer: srv.URL, Flow: f.flow, Clients: f.reg, Keys: &oauth.Keys{DB: db, Seal: sk}, LoginPath: "/login", Production: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = h
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &asFixture{flowFixture: f, srv: srv, server: s, http: noFollow}
}

func challenge(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

const verifier = "a-pkce-verifier-of-more-than-forty-three-characters-0123456789"

func (a *asFixture) authorize(t *testing.T, change func(url.Values)) *http.Response {
	t.Helper()
	q := url.Values{"response_type": {"code"}, "client_id": {a.client.ID}, "redirect_uri": {"https://diary.example/cb"},
		"scope": {"openid fhirUser launch/patient offline_access patient/Observation.rs patient/Condition.rs"}, "state": {"st-1"}, "nonce": {"n-1"},
		"aud": {a.server.FHIRBase()}, "code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"}}
	if change != nil {
		change(q)
	}
	resp, err := a.http.Get(a.srv.URL + "/oauth/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func (a *asFixture) post(t *testing.T, path string, form url.Values, header ...string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, a.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := a.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(b, &out)
	return resp.StatusCode, out, resp.Header
}

// code runs a request through the authorize endpoint, approval and the
// callback, and returns the code the app receives.
func (a *asFixture) code(t *testing.T, granted string) string {
	t.Helper()
	resp := a.authorize(t, nil)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Path != "/login" || loc.Query().Get("request") == "" {
		t.Fatalf("authorize: %d to %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	id := loc.Query().Get("request")
	_, ticket, err := a.flow.Approve(context.Background(), id, oauth.Approval{Account: "maria", Patient: "demo-maria", Scopes: scopes(t, granted), AuthTime: a.clock.Now(), AMR: []string{"pwd", "otp"}})
	if err != nil {
		t.Fatal(err)
	}
	// Knowing the request's id is not enough to collect its code.
	for _, bad := range []string{a.server.AuthCallback(id, ""), a.server.AuthCallback(id, "guess")} {
		resp, err := a.http.Get(bad)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Fatalf("callback without the ticket: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	cb, err := a.http.Get(a.server.AuthCallback(id, ticket))
	if err != nil {
		t.Fatal(err)
	}
	cb.Body.Close()
	back, _ := url.Parse(cb.Header.Get("Location"))
	if cb.StatusCode != http.StatusFound || back.Host != "diary.example" || back.Query().Get("state") != "st-1" || back.Query().Get("code") == "" {
		t.Fatalf("callback: %d to %s", cb.StatusCode, cb.Header.Get("Location"))
	}
	again, err := a.http.Get(a.server.AuthCallback(id, ticket))
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if again.StatusCode != http.StatusBadRequest {
		t.Fatalf("the ticket worked twice: %d", again.StatusCode)
	}
	return back.Query().Get("code")
}

// TestSTU2StandaloneLaunch: the code flow end to end over HTTP: PKCE S256,
// the SMART token response (patient, scope, no-store), an ID token
// signed with a published key carrying nonce and fhirUser, a code that
// works once, introspection with the token as Bearer, a refresh that
// rotates and mints no ID token, and revocation.
func TestSTU2StandaloneLaunch(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		a := newAS(t, db)
		granted := "openid fhirUser launch/patient offline_access patient/Observation.rs"
		code := a.code(t, granted)
		tokenForm := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://diary.example/cb"},
			"client_id": {a.client.ID}, "code_verifier": {verifier}}
		status, tok, hdr := a.post(t, "/oauth/token", tokenForm)
		if status != http.StatusOK || tok["access_token"] == nil || tok["refresh_token"] == nil || tok["patient"] != "demo-maria" ||
			tok["scope"] != granted || tok["token_type"] != "Bearer" || tok["need_patient_banner"] != true {
			t.Fatalf("token: %d %v", status, tok)
		}
		if hdr.Get("Cache-Control") != "no-store" || hdr.Get("Pragma") != "no-cache" {
			t.Errorf("token response headers: %v", hdr)
		}
		// The ID token verifies with the published keys.
		resp, err := http.Get(a.srv.URL + "/oauth/jwks")
		if err != nil {
			t.Fatal(err)
		}
		var jwks jose.JSONWebKeySet
		json.NewDecoder(resp.Body).Decode(&jwks)
		resp.Body.Close()
		idt, err := jwt.ParseSigned(tok["id_token"].(string), []jose.SignatureAlgorithm{jose.RS256})
		if err != nil || len(jwks.Keys) != 1 || jwks.Keys[0].IsPublic() == false {
			t.Fatalf("id token %v, jwks %d keys", err, len(jwks.Keys))
		}
		var claims jwt.Claims
		var extra struct {
			Nonce    string `json:"nonce"`
			FHIRUser string `json:"fhirUser"`
		}
		if err := idt.Claims(jwks.Keys[0].Key, &claims, &extra); err != nil {
			t.Fatal(err)
		}
		if claims.Issuer != a.srv.URL || !claims.Audience.Contains(a.client.ID) || claims.Subject != "maria" || extra.Nonce != "n-1" ||
			extra.FHIRUser != a.server.FHIRBase()+"/Patient/demo-maria" {
			t.Errorf("id token claims %+v %+v", claims, extra)
		}
		// The code works once.
		if status, out, _ := a.post(t, "/oauth/token", tokenForm); status != http.StatusBadRequest || out["error"] != "invalid_grant" {
			t.Errorf("a replayed code: %d %v", status, out)
		}
		// (The replay revoked what the code issued.)
		if status, out, _ := a.post(t, "/oauth/introspect", url.Values{"token": {tok["access_token"].(string)}}, "Authorization", "Bearer "+tok["access_token"].(string)); status != http.StatusOK || out["active"] != false {
			t.Errorf("introspection after a replay: %d %v", status, out)
		}

		code = a.code(t, granted)
		tokenForm.Set("code", code)
		_, tok, _ = a.post(t, "/oauth/token", tokenForm)
		access := tok["access_token"].(string)
		status, in, _ := a.post(t, "/oauth/introspect", url.Values{"token": {access}}, "Authorization", "Bearer "+access)
		if status != http.StatusOK || in["active"] != true || in["patient"] != "demo-maria" || in["client_id"] != a.client.ID || in["scope"] != granted ||
			in["fhirUser"] != a.server.FHIRBase()+"/Patient/demo-maria" || in["sub"] != "maria" || in["iss"] != a.srv.URL || in["exp"] == nil {
			t.Errorf("introspection: %d %v", status, in)
		}
		if status, out, _ := a.post(t, "/oauth/introspect", url.Values{"token": {access}}); status != http.StatusUnauthorized || out["error"] != "invalid_client" {
			t.Errorf("introspection without credentials: %d %v", status, out)
		}
		// Userinfo names the person for a token with openid.
		req, _ := http.NewRequest(http.MethodGet, a.srv.URL+"/oauth/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+access)
		ui, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var who map[string]any
		json.NewDecoder(ui.Body).Decode(&who)
		ui.Body.Close()
		if ui.StatusCode != http.StatusOK || who["sub"] != "maria" || who["fhirUser"] != a.server.FHIRBase()+"/Patient/demo-maria" {
			t.Errorf("userinfo: %d %v", ui.StatusCode, who)
		}
		req.Header.Set("Authorization", "Bearer not-a-token")
		if ui, _ := http.DefaultClient.Do(req); ui.StatusCode != http.StatusUnauthorized {
			t.Errorf("userinfo with a made-up token: %d", ui.StatusCode)
		}
		status, ref, _ := a.post(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}, "client_id": {a.client.ID}})
		if status != http.StatusOK || ref["id_token"] != nil || ref["refresh_token"] == tok["refresh_token"] || ref["access_token"] == nil || ref["patient"] != "demo-maria" {
			t.Fatalf("refresh: %d %v", status, ref)
		}
		if status, _, _ := a.post(t, "/oauth/revoke", url.Values{"token": {ref["refresh_token"].(string)}, "client_id": {a.client.ID}}); status != http.StatusOK {
			t.Errorf("revoke: %d", status)
		}
		if _, _, ev := audittest.Last(t, db); !strings.Contains(ev, "token-revoked-by-app") {
			t.Errorf("revocation by the app not audited: %s", ev)
		}
		if _, out, _ := a.post(t, "/oauth/introspect", url.Values{"token": {ref["access_token"].(string)}}, "Authorization", "Bearer "+ref["access_token"].(string)); out["active"] != false {
			t.Errorf("after revoking the refresh token its access token: %v", out)
		}
		// Discovery says what is done.
		resp, err = http.Get(a.srv.URL + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		var disc map[string]any
		json.NewDecoder(resp.Body).Decode(&disc)
		resp.Body.Close()
		b, _ := json.Marshal(disc)
		if disc["issuer"] != a.srv.URL || !strings.Contains(string(b), `"code_challenge_methods_supported":["S256"]`) ||
			strings.Contains(string(b), "implicit") || strings.Contains(string(b), "device") || disc["introspection_endpoint"] != a.srv.URL+"/oauth/introspect" {
			t.Errorf("discovery: %s", b)
		}
	})
}

// TestSTU2InvalidAuthorizationRequest: an unknown app or an unregistered redirect
// URI gets an error page and no redirect; everything else is sent back
// to the app with the OAuth error, and nothing is kept.
func TestSTU2InvalidAuthorizationRequest(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		a := newAS(t, db)
		for _, tc := range []struct {
			name   string
			change func(url.Values)
			error  string // "" for an error page
		}{
			{"unknown app", func(q url.Values) { q.Set("client_id", "nope") }, ""},
			{"near-miss redirect URI", func(q url.Values) { q.Set("redirect_uri", "https://diary.example/cb/") }, ""},
			{"another host", func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") }, ""},
			{"no PKCE", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, "invalid_request"},
			{"plain PKCE", func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request"},
			{"blank PKCE", func(q url.Values) { q.Set("code_challenge", "") }, "invalid_request"},
			{"wrong aud", func(q url.Values) { q.Set("aud", "https://other.example/fhir") }, "invalid_request"},
			{"no aud", func(q url.Values) { q.Del("aud") }, "invalid_request"},
			{"unknown scope", func(q url.Values) { q.Set("scope", "openid patient/Unicorn.rs") }, "invalid_scope"},
			{"malformed scope", func(q url.Values) { q.Set("scope", "openid patient/Observation.sr") }, "invalid_scope"},
			{"system scope", func(q url.Values) { q.Set("scope", "system/Observation.rs") }, "invalid_scope"},
			{"implicit flow", func(q url.Values) { q.Set("response_type", "token") }, "unauthorized_client"},
			{"fragment response mode", func(q url.Values) { q.Set("response_mode", "fragment") }, "invalid_request"},
			{"form_post response mode", func(q url.Values) { q.Set("response_mode", "form_post") }, "invalid_request"},
			{"prompt=none", func(q url.Values) { q.Set("prompt", "none") }, "interaction_required"},
			{"launch scope without a launch", func(q url.Values) { q.Set("scope", "launch openid patient/Observation.rs") }, "invalid_request"},
			{"too many scopes", func(q url.Values) { q.Set("scope", strings.Repeat("patient/Observation.rs ", 70)) }, "invalid_scope"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp := a.authorize(t, tc.change)
				loc, _ := url.Parse(resp.Header.Get("Location"))
				if tc.error == "" {
					if resp.StatusCode == http.StatusFound || resp.StatusCode < 400 {
						t.Fatalf("answered %d to %s, want an error page", resp.StatusCode, resp.Header.Get("Location"))
					}
					return
				}
				got := loc.Query()
				if loc.Fragment != "" { // the error comes back in the mode the app asked for
					got, _ = url.ParseQuery(loc.Fragment)
				}
				if resp.StatusCode != http.StatusFound || loc.Host != "diary.example" || got.Get("error") != tc.error || got.Get("state") != "st-1" {
					t.Fatalf("answered %d to %s, want the app's redirect with %s", resp.StatusCode, resp.Header.Get("Location"), tc.error)
				}
			})
		}
		resp := a.authorize(t, func(q url.Values) { q.Del("state") })
		if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != http.StatusFound || loc.Query().Get("error") != "invalid_request" {
			t.Errorf("no state: %d to %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		var n int
		db.Read(context.Background(), func(tx *sqldb.Tx) error {
			return tx.QueryRow(context.Background(), "SELECT COUNT(*) FROM oauth_request").Scan(&n)
		})
		if n != 0 {
			t.Errorf("%d requests kept from bad input", n)
		}
	})
}

// TestSTU2InvalidTokenRequest: the token endpoint's refusals, each the OAuth
// error SMART names, and nothing issued.
func TestSTU2InvalidTokenRequest(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		a := newAS(t, db)
		granted := "openid offline_access patient/Observation.rs"
		form := func(code string, change func(url.Values)) url.Values {
			f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://diary.example/cb"},
				"client_id": {a.client.ID}, "code_verifier": {verifier}}
			if change != nil {
				change(f)
			}
			return f
		}
		for _, tc := range []struct {
			name   string
			change func(url.Values)
			status int
			error  string
		}{
			{"wrong verifier", func(f url.Values) { f.Set("code_verifier", strings.Repeat("x", 50)) }, 400, "invalid_grant"},
			{"no verifier", func(f url.Values) { f.Del("code_verifier") }, 400, "invalid_grant"},
			{"another redirect URI", func(f url.Values) { f.Set("redirect_uri", "https://diary.example/other") }, 400, "invalid_grant"},
			{"another app", func(f url.Values) { f.Set("client_id", a.other.ID) }, 400, "invalid_grant"},
			{"unknown app", func(f url.Values) { f.Set("client_id", "nope") }, 400, "invalid_client"},
			{"made-up code", func(f url.Values) { f.Set("code", "made-up") }, 400, "invalid_grant"},
			{"password grant", func(f url.Values) {
				f.Set("grant_type", "password")
				f.Set("username", "maria")
				f.Set("password", "x")
			}, 400, "unsupported_grant_type"},
			{"client credentials", func(f url.Values) { f.Set("grant_type", "client_credentials") }, 400, "unauthorized_client"},
			{"a secret for a public app", func(f url.Values) { f.Set("client_secret", "guess") }, 400, "invalid_client"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code := a.code(t, granted)
				status, out, _ := a.post(t, "/oauth/token", form(code, tc.change))
				if status != tc.status || out["error"] != tc.error || out["access_token"] != nil {
					t.Fatalf("answered %d %v, want %d %s", status, out, tc.status, tc.error)
				}
				want := map[string]string{"invalid_client": "client-authentication-failed", "invalid_grant": ""}[tc.error]
				if tc.name == "wrong verifier" || tc.name == "no verifier" || tc.name == "another redirect URI" || tc.name == "another app" {
					want = "code-exchange-refused"
				}
				if want != "" {
					if _, _, ev := audittest.Last(t, db); !strings.Contains(ev, want) {
						t.Errorf("not audited as %s: %s", want, ev)
					}
				}
			})
		}
		// Someone with the code but not the verifier cannot burn it.
		code := a.code(t, granted)
		if status, _, _ := a.post(t, "/oauth/token", form(code, func(f url.Values) { f.Set("code_verifier", strings.Repeat("y", 50)) })); status != 400 {
			t.Fatalf("a stolen code with a guessed verifier: %d", status)
		}
		if status, out, _ := a.post(t, "/oauth/token", form(code, nil)); status != http.StatusOK || out["access_token"] == nil {
			t.Errorf("the app's own exchange after a failed one: %d %v", status, out)
		}
		// A refresh token replayed after rotation.
		_, tok, _ := a.post(t, "/oauth/token", form(a.code(t, granted), nil))
		refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}, "client_id": {a.client.ID}}
		if status, _, _ := a.post(t, "/oauth/token", refresh); status != http.StatusOK {
			t.Fatalf("first refresh: %d", status)
		}
		a.clock.Add(oauth.RefreshGrace * 2)
		if status, out, _ := a.post(t, "/oauth/token", refresh); status != 400 || out["error"] != "invalid_grant" {
			t.Errorf("a replayed refresh token: %d %v", status, out)
		}
	})
}

// TestClientAssertions: an app with keys authenticates with a signed
// assertion (RS384 or ES384, aud the token URL, a jti used once); every
// other assertion is invalid_client.
func TestClientAssertions(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		a := newAS(t, db)
		ctx := context.Background()
		ecKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &ecKey.PublicKey, KeyID: "ec"}, {Key: &rsaKey.PublicKey, KeyID: "rsa"}}}
		b, _ := json.Marshal(set)
		c, _, err := a.reg.Add(ctx, oauth.NewClient{Name: "Research Hub", Kind: oauth.KindJWKS, RedirectURIs: []string{"https://hub.example/cb"}, JWKS: b, By: "test"})
		if err != nil {
			t.Fatal(err)
		}
		tokenURL := a.srv.URL + "/oauth/token"
		sign := func(alg jose.SignatureAlgorithm, key any, kid string, claims jwt.Claims) string {
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
			if err != nil {
				t.Fatal(err)
			}
			out, err := jwt.Signed(s).Claims(claims).Serialize()
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		now := a.clock.Now()
		claims := func(jti string, change func(*jwt.Claims)) jwt.Claims {
			cl := jwt.Claims{Issuer: c.ID, Subject: c.ID, Audience: jwt.Audience{tokenURL}, ID: jti,
				Expiry: jwt.NewNumericDate(now.Add(4 * time.Minute)), IssuedAt: jwt.NewNumericDate(now)}
			if change != nil {
				change(&cl)
			}
			return cl
		}
		other, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
			base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+c.ID+`","sub":"`+c.ID+`","aud":"`+tokenURL+`","jti":"n1","exp":`+strconv.FormatInt(now.Add(time.Minute).Unix(), 10)+`}`)) + "."
		for _, tc := range []struct {
			name      string
			assertion string
			want      string
		}{
			{"ES384", sign(jose.ES384, ecKey, "ec", claims("j1", nil)), "invalid_grant"},
			{"the same jti again", sign(jose.ES384, ecKey, "ec", claims("j1", nil)), "invalid_client"},
			{"RS384", sign(jose.RS384, rsaKey, "rsa", claims("j2", nil)), "invalid_grant"},
			{"alg none", none, "invalid_client"},
			{"RS256, not offered", sign(jose.RS256, rsaKey, "rsa", claims("j3", nil)), "invalid_client"},
			{"audience the issuer, not the token URL", sign(jose.ES384, ecKey, "ec", claims("j4", func(cl *jwt.Claims) { cl.Audience = jwt.Audience{a.srv.URL} })), "invalid_client"},
			{"expired", sign(jose.ES384, ecKey, "ec", claims("j5", func(cl *jwt.Claims) { cl.Expiry = jwt.NewNumericDate(now.Add(-time.Minute)) })), "invalid_client"},
			{"expiring in an hour", sign(jose.ES384, ecKey, "ec", claims("j6", func(cl *jwt.Claims) { cl.Expiry = jwt.NewNumericDate(now.Add(time.Hour)) })), "invalid_client"},
			{"no jti", sign(jose.ES384, ecKey, "ec", claims("", nil)), "invalid_client"},
			{"a key the app did not register", sign(jose.ES384, other, "ec", claims("j7", nil)), "invalid_client"},
			{"another app's name", sign(jose.ES384, ecKey, "ec", claims("j8", func(cl *jwt.Claims) { cl.Issuer, cl.Subject = a.client.ID, a.client.ID })), "invalid_client"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, out, _ := a.post(t, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {"made-up"},
					"redirect_uri": {"https://hub.example/cb"}, "code_verifier": {verifier},
					"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {tc.assertion}})
				if out["error"] != tc.want || status != http.StatusBadRequest && status != http.StatusUnauthorized {
					t.Fatalf("answered %d %v, want %s", status, out, tc.want)
				}
			})
		}
	})
}
