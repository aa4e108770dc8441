package web

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"carefront/internal/audit/audittest"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

func TestResolveClientBelievesOnlyTrustedProxies(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("2001:db8::/32")}
	for _, tt := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no proxy, header ignored", "203.0.113.5", []string{"198.51.100.1"}, "203.0.113.5"},
		{"untrusted peer forging a header", "203.0.113.5", []string{"10.0.0.1"}, "203.0.113.5"},
		{"one trusted proxy", "10.0.0.7", []string{"198.51.100.1"}, "198.51.100.1"},
		{"client forges hops left of the real one", "10.0.0.7", []string{"1.2.3.4, 5.6.7.8, 198.51.100.1"}, "198.51.100.1"},
		{"two trusted proxies", "10.0.0.7", []string{"198.51.100.1, 192.0.2.10"}, "198.51.100.1"},
		{"hops over two headers", "10.0.0.7", []string{"1.2.3.4", "198.51.100.1, 10.1.1.1"}, "198.51.100.1"},
		{"garbage hop stops at the proxy", "10.0.0.7", []string{"198.51.100.1, not-an-ip"}, "10.0.0.7"},
		{"every hop trusted", "10.0.0.7", []string{"10.9.9.9, 10.8.8.8"}, "10.9.9.9"},
		{"trusted proxy without header", "10.0.0.7", nil, "10.0.0.7"},
		{"IPv6 client", "2001:db8::1", []string{"2001:db8:ffff::1, 2606:4700::6810:84e5"}, "2606:4700::6810:84e5"},
		{"v4-mapped proxy", "::ffff:10.0.0.7", []string{"198.51.100.1"}, "198.51.100.1"},
		{"hops with ports", "10.0.0.7", []string{"198.51.100.1:5678, 10.0.0.8:443"}, "198.51.100.1"},
		{"IPv6 hop with port", "10.0.0.7", []string{"[2606:4700::6810:84e5]:443"}, "2606:4700::6810:84e5"},
	} {
		if got := resolveClient(tt.peer, tt.xff, trusted); got != tt.want {
			t.Errorf("%s: resolveClient(%q, %q) = %q, want %q", tt.name, tt.peer, tt.xff, got, tt.want)
		}
	}
	if got := resolveClient("10.0.0.7", []string{"198.51.100.1"}, nil); got != "10.0.0.7" {
		t.Errorf("with no trusted proxies the header was believed: %q", got)
	}
}

// keyRecorder is a Limiter that remembers the keys it was asked about.
type keyRecorder struct {
	mu   sync.Mutex
	keys []string
}

func (k *keyRecorder) Allow(_ context.Context, key string) (bool, time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys = append(k.keys, key)
	return true, 0
}

// Behind the load balancer, each client has its own budget (they all once
// shared the balancer's), its audit records and session carry its own
// address, and a client talking to carefront directly cannot pick its
// budget with a forged header.
func TestClientBehindTheProxyIsTheOneLimitedAuditedAndListed(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		rec := &keyRecorder{}
		h := newAuthHarness(t, db, func(o *Options) {
			o.Limiter = rec
			o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
		})
		h.signIn(t, "ana@example.com")
		h.post(t, "/signout", nil)
		for _, ip := range []string{"198.51.100.1", "198.51.100.2"} {
			h.post(t, "/signin", url.Values{"email": {"nobody@example.com"}, "password": {"wrong"}}, "X-Forwarded-For", "6.6.6.6, "+ip)
		}
		rec.mu.Lock()
		keys := append([]string(nil), rec.keys...)
		rec.mu.Unlock()
		if n := len(keys); n < 2 || keys[n-2] != "198.51.100.1" || keys[n-1] != "198.51.100.2" {
			t.Errorf("limited as %v, want each client's own address", keys)
		}
		all := audittest.Events(t, db)
		events := []string{all[len(all)-1], all[len(all)-2]}
		if len(events) != 2 || !strings.Contains(events[0], `"address":"198.51.100.2"`) || !strings.Contains(events[1], `"address":"198.51.100.1"`) {
			t.Errorf("audit records do not carry the clients' addresses:\n%s", strings.Join(events, "\n"))
		}
		// A sign-in through the proxy lists the client's address.
		h.clock.Add(time.Minute)
		if res, _ := h.post(t, "/signin", url.Values{"email": {"ana@example.com"}, "password": {"a long enough passphrase"}}, "X-Forwarded-For", "198.51.100.77"); res.StatusCode != 303 {
			t.Fatalf("sign-in: %d", res.StatusCode)
		}
		h.clock.Add(30 * time.Second)
		h.post(t, "/signin/verify", url.Values{"code": {totpCode(t, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", h.clock.Now())}}, "X-Forwarded-For", "198.51.100.77")
		if _, page := h.get(t, "/account/security"); !strings.Contains(page, "198.51.100.77") {
			t.Error("the session list does not show the client's address")
		}
	})
	// An untrusted peer's header is not believed.
	rec := &keyRecorder{}
	s := newTestServer(t, func(o *Options) { o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} })
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "203.0.113.9:5555"
	r.Header.Set("X-Forwarded-For", "198.51.100.3")
	if s.limitedBy(rec, httptest.NewRecorder(), s.withClientAddr(r)); rec.keys[0] != "203.0.113.9" {
		t.Errorf("a direct client picked its budget with a header: limited as %q", rec.keys[0])
	}
}
