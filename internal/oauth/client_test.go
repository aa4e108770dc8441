package oauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/audit/audittest"
	"carefront/internal/oauth"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

func jwks(t *testing.T, keys ...any) []byte {
	t.Helper()
	set := jose.JSONWebKeySet{}
	for i, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k, KeyID: string(rune('a' + i))})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func registry(t *testing.T, db *sqldb.DB, production bool) *oauth.Clients {
	t.Helper()
	sig, _ := audit.NewSigner(make([]byte, 32))
	aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test"})
	t.Cleanup(func() { aw.Close(context.Background()) })
	return &oauth.Clients{DB: db, Audit: aw, Production: production}
}

func count(t *testing.T, db *sqldb.DB) int {
	t.Helper()
	var n int
	if err := db.Read(context.Background(), func(tx *sqldb.Tx) error {
		return tx.QueryRow(context.Background(), "SELECT COUNT(*) FROM oauth_client").Scan(&n)
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRegisterClients: each kind of app registers and reads back as it
// was given; a secret is shown once and checked against its hash only;
// redirect URIs match exactly; a disabled app stays known but inactive.
func TestRegisterClients(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := registry(t, db, true)
		pub, secret, err := s.Add(ctx, oauth.NewClient{Name: "Health Diary", Kind: oauth.KindPublic, Reviewed: true, By: "carefront-cli",
			RedirectURIs: []string{"https://diary.example/callback", "com.example.diary:/cb", "http://127.0.0.1:5173/cb"},
			Origins:      []string{"https://diary.example"}, LaunchURL: "https://diary.example/launch"})
		if err != nil || secret != "" || len(pub.ID) != 32 {
			t.Fatalf("public app: %+v %q %v", pub, secret, err)
		}
		conf, secret, err := s.Add(ctx, oauth.NewClient{Name: "Clinic Companion", Kind: oauth.KindSecret, Reviewed: true, By: "carefront-cli",
			RedirectURIs: []string{"https://companion.example/cb"}})
		if err != nil || len(secret) < 43 {
			t.Fatalf("confidential app: %v, secret %q", err, secret)
		}
		rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
		ecKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		keyed, _, err := s.Add(ctx, oauth.NewClient{Name: "Research Hub", Kind: oauth.KindJWKS, By: "carefront-cli",
			RedirectURIs: []string{"https://hub.example/cb"}, JWKS: jwks(t, &rsaKey.PublicKey, &ecKey.PublicKey)})
		if err != nil {
			t.Fatal(err)
		}

		got, err := s.Get(ctx, pub.ID)
		if err != nil || got.Name != "Health Diary" || !got.Public() || !got.Reviewed || !got.Active() || got.LaunchURL != "https://diary.example/launch" {
			t.Fatalf("Get = %+v %v", got, err)
		}
		for uri, want := range map[string]bool{"https://diary.example/callback": true, "com.example.diary:/cb": true, "http://127.0.0.1:5173/cb": true,
			"https://diary.example/callback/": false, "https://diary.example/callback?x=1": false, "https://DIARY.example/callback": false, "https://diary.example/": false} {
			if got.RedirectAllowed(uri) != want {
				t.Errorf("redirect %q allowed = %v, want %v", uri, !want, want)
			}
		}
		if !got.OriginAllowed("https://diary.example") || got.OriginAllowed("https://evil.example") {
			t.Error("origins")
		}
		c, _ := s.Get(ctx, conf.ID)
		if !c.CheckSecret(secret) || c.CheckSecret(secret+"x") || c.CheckSecret("") || got.CheckSecret(secret) {
			t.Error("the secret is not checked exactly, or a public app accepted one")
		}
		k, _ := s.Get(ctx, keyed.ID)
		if k.JWKS == nil || len(k.JWKS.Keys) != 2 || k.Reviewed {
			t.Errorf("keyed app: %+v", k)
		}
		if list, err := s.List(ctx); err != nil || len(list) != 3 {
			t.Errorf("List = %d apps, %v", len(list), err)
		}
		if err := s.Disable(ctx, pub.ID, "carefront-cli"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Get(ctx, pub.ID); got.Active() {
			t.Error("a disabled app is still active")
		}
		if err := s.Disable(ctx, pub.ID, "carefront-cli"); err != oauth.ErrUnknownClient {
			t.Errorf("disabling twice: %v", err)
		}
		if _, err := s.Get(ctx, "nope"); err != oauth.ErrUnknownClient {
			t.Errorf("unknown app: %v", err)
		}
		if outcome, _, ev := audittest.Last(t, db); outcome != string(audit.Success) || !strings.Contains(ev, "client-disabled") || !strings.Contains(ev, pub.ID) {
			t.Errorf("disable audited as %s %s", outcome, ev)
		}
	})
}

// TestBadRegistrations: each is refused with a line saying what is
// wrong, and nothing is registered; the refusal is audited.
func TestBadRegistrations(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := registry(t, db, true)
		small, _ := rsa.GenerateKey(rand.Reader, 1024)
		p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		priv, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		ok := []string{"https://app.example/cb"}
		for _, tc := range []struct {
			name string
			n    oauth.NewClient
			want string
		}{
			{"no name", oauth.NewClient{Kind: oauth.KindPublic, RedirectURIs: ok}, "give the app a name"},
			{"control character in name", oauth.NewClient{Name: "App\x07", Kind: oauth.KindPublic, RedirectURIs: ok}, "printable"},
			{"no redirect", oauth.NewClient{Name: "A", Kind: oauth.KindPublic}, "at least one redirect URI"},
			{"relative redirect", oauth.NewClient{Name: "A", Kind: oauth.KindPublic, RedirectURIs: []string{"/cb"}}, "not an absolute URL"},
			{"redirect with fragment", oauth.NewClient{Name: "A", Kind: oauth.KindPublic, RedirectURIs: []string{"https://app.example/cb#x"}}, "fragment"},
			{"plain http redirect in production", oauth.NewClient{Name: "A", Kind: oauth.KindPublic, RedirectURIs: []string{"http://app.example/cb"}}, "must use https"},
			{"javascript redirect", oauth.NewClient{Name: "A", Kind: oauth.KindPublic, RedirectURIs: []string{"javascript:alert(1)"}}, "must use https"},
			{"user in redirect", oauth.NewClient{Name: "A", Kind: oauth.KindPublic, RedirectURIs: []string{"https://u:p@app.example/cb"}}, "user name"},
			{"origin with path", oauth.NewClient{Name: "A", Kind: oauth.KindPublic, RedirectURIs: ok, Origins: []string{"https://app.example/"}}, "scheme://host"},
			{"unknown kind", oauth.NewClient{Name: "A", Kind: "password", RedirectURIs: ok}, "is none of them"},
			{"private scheme for a confidential app", oauth.NewClient{Name: "A", Kind: oauth.KindSecret, RedirectURIs: []string{"com.example.app:/cb"}}, "must use https"},
			{"public app with keys", oauth.NewClient{Name: "A", Kind: oauth.KindPublic, RedirectURIs: ok, JWKSURL: "https://app.example/jwks"}, "no key set"},
			{"keys both ways", oauth.NewClient{Name: "A", Kind: oauth.KindJWKS, RedirectURIs: ok, JWKSURL: "https://app.example/jwks", JWKS: jwks(t, &p256.PublicKey)}, "one of them"},
			{"no keys", oauth.NewClient{Name: "A", Kind: oauth.KindJWKS, RedirectURIs: ok}, "one of them"},
			{"JWKS URL at a private address", oauth.NewClient{Name: "A", Kind: oauth.KindJWKS, RedirectURIs: ok, JWKSURL: "https://10.0.0.5/jwks"}, "private or local address"},
			{"JWKS URL at localhost", oauth.NewClient{Name: "A", Kind: oauth.KindJWKS, RedirectURIs: ok, JWKSURL: "https://localhost/jwks"}, "this machine"},
			{"JWKS URL over http", oauth.NewClient{Name: "A", Kind: oauth.KindJWKS, RedirectURIs: ok, JWKSURL: "http://app.example/jwks"}, "must use https"},
			{"not a JWKS", oauth.NewClient{Name: "A", Kind: oauth.KindJWKS, RedirectURIs: ok, JWKS: []byte(`{"keys":"no"}`)}, "not a JWKS document"},
			{"small RSA key", oauth.NewClient{Name: "A", Kind: oauth.KindJWKS, RedirectURIs: ok, JWKS: jwks(t, &small.PublicKey)}, "2048 bits"},
			{"P-256 key", oauth.NewClient{Name: "A", Kind: oauth.KindJWKS, RedirectURIs: ok, JWKS: jwks(t, &p256.PublicKey)}, "P-384"},
			{"private key", oauth.NewClient{Name: "A", Kind: oauth.KindJWKS, RedirectURIs: ok, JWKS: jwks(t, priv)}, "private"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c, _, err := s.Add(ctx, tc.n)
				if err == nil || apperr.CodeOf(err) != apperr.Invalid || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("Add = %+v, %v; want Invalid with %q", c, err, tc.want)
				}
				if n := count(t, db); n != 0 {
					t.Errorf("%d apps registered", n)
				}
				if outcome, _, ev := audittest.Last(t, db); outcome != string(audit.MinorFailure) || !strings.Contains(ev, "client-refused") {
					t.Errorf("refusal audited as %s %s", outcome, ev)
				}
			})
		}
		// Outside production, a developer's plain http app registers.
		dev := registry(t, db, false)
		if _, _, err := dev.Add(ctx, oauth.NewClient{Name: "Dev app", Kind: oauth.KindPublic, RedirectURIs: []string{"http://app.test:8080/cb"}}); err != nil {
			t.Errorf("development http redirect: %v", err)
		}
	})
}

// TestPublicIP: the addresses a JWKS URL may reach in production.
func TestPublicIP(t *testing.T) {
	for addr, want := range map[string]bool{
		"8.8.8.8": true, "2606:4700::1111": true,
		"10.0.0.5": false, "127.0.0.1": false, "169.254.169.254": false, "100.64.1.1": false, "192.0.0.8": false,
		"198.18.0.1": false, "240.0.0.1": false, "::1": false, "fd00::1": false, "64:ff9b::a00:1": false, "::ffff:10.0.0.1": false, "0.0.0.0": false,
	} {
		if got := oauth.PublicIP(net.ParseIP(addr)); got != want {
			t.Errorf("PublicIP(%s) = %v, want %v", addr, got, want)
		}
	}
}

// TestJWKSURL: an app's keys are fetched from its JWKS URL and cached;
// in production a URL that resolves to a private or loopback address is
// never fetched, whatever it was registered as.
func TestJWKSURL(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write(jwks(t, &key.PublicKey))
	}))
	t.Cleanup(srv.Close)
	s := registry(t, db, false)
	c, _, err := s.Add(ctx, oauth.NewClient{Name: "Dev app", Kind: oauth.KindJWKS, RedirectURIs: []string{"http://127.0.0.1:9/cb"}, JWKSURL: srv.URL + "/jwks", By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		set, err := s.KeysOf(ctx, c)
		if err != nil || len(set.Keys) != 1 {
			t.Fatalf("KeysOf = %v, %v", set, err)
		}
	}
	if hits.Load() != 1 {
		t.Errorf("the JWKS was fetched %d times, want once (cached)", hits.Load())
	}
	// In production: an https JWKS on a loopback address is never
	// reached (the dialer refuses the address, before TLS).
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write(jwks(t, &key.PublicKey))
	}))
	t.Cleanup(tlsSrv.Close)
	c2, _, err := s.Add(ctx, oauth.NewClient{Name: "Dev app 2", Kind: oauth.KindJWKS, RedirectURIs: []string{"http://127.0.0.1:9/cb"}, JWKSURL: tlsSrv.URL + "/jwks", By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	prod := registry(t, db, true)
	if _, err := prod.KeysOf(ctx, c); err == nil || !strings.Contains(err.Error(), "not https") {
		t.Errorf("in production a plain http JWKS: %v", err)
	}
	if _, err := prod.KeysOf(ctx, c2); err == nil || !strings.Contains(err.Error(), "is not a public address") {
		t.Errorf("in production an https JWKS at a loopback address: %v, want the dialer's refusal", err)
	}
	if hits.Load() != 1 {
		t.Errorf("a production fetch reached a loopback server (%d hits)", hits.Load())
	}
}
