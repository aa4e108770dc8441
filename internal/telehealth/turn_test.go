package telehealth_test

import (
	"net"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"carefront/internal/telehealth"
)

func startTURN(t *testing.T, now func() time.Time) *telehealth.TURN {
	t.Helper()
	srv := &telehealth.TURN{Listen: "127.0.0.1:0", PublicIP: net.IPv4(127, 0, 0, 1), Realm: "carefront", Secret: []byte("a shared secret of the clinic"), Now: now}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// allocate asks the server for a relay with the given credentials.
func allocate(t *testing.T, srv *telehealth.TURN, user, pass string) (net.PacketConn, *turn.Client, error) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: srv.Addr().String(), STUNServerAddr: srv.Addr().String(),
		Username: user, Password: pass, Realm: "carefront", Conn: conn, RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if relay != nil {
		t.Cleanup(func() { relay.Close() })
	}
	return relay, c, err
}

// TestTURN: the embedded TURN server relays for the credentials a visit
// page is given (the coturn REST scheme), and refuses expired ones, ones
// claiming to last longer than CredentialTTL, and ones made with another
// secret; it relays to its own relay address (two relayed browsers) but
// not into private networks.
func TestTURN(t *testing.T) {
	now := time.Now()
	srv := startTURN(t, func() time.Time { return now })
	secret := []byte("a shared secret of the clinic")

	user, pass := telehealth.TURNCredentials(secret, "Person/acct-maria", now, telehealth.CredentialTTL)
	relay, c, err := allocate(t, srv, user, pass)
	if err != nil {
		t.Fatalf("valid credentials: %v", err)
	}
	if srv.Allocations() != 1 {
		t.Errorf("allocations: %d", srv.Allocations())
	}
	// Another relayed browser's address: permitted.
	other, _, err := allocate(t, srv, user, pass)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreatePermission(other.LocalAddr()); err != nil {
		t.Errorf("permission to the server's own relay address: %v", err)
	}
	for _, ip := range []string{"10.0.0.5", "192.168.1.10", "169.254.169.254", "172.16.0.1", "100.100.100.200", "198.18.0.1", "64:ff9b::a00:5", "2002:a00:5::1", "fd00::1", "::1"} {
		if err := c.CreatePermission(&net.UDPAddr{IP: net.ParseIP(ip), Port: 5000}); err == nil {
			t.Errorf("permission to %s was given", ip)
		}
	}
	if err := c.CreatePermission(&net.UDPAddr{IP: net.ParseIP("8.8.4.4"), Port: 5000}); err != nil {
		t.Errorf("permission to a public address: %v", err)
	}
	_ = relay

	bad := map[string][2]string{}
	u, p := telehealth.TURNCredentials(secret, "Person/acct-maria", now.Add(-5*time.Hour), telehealth.CredentialTTL)
	bad["expired"] = [2]string{u, p}
	u, p = telehealth.TURNCredentials(secret, "Person/acct-maria", now, 48*time.Hour)
	bad["too long"] = [2]string{u, p}
	u, p = telehealth.TURNCredentials([]byte("another secret entirely!"), "Person/acct-maria", now, time.Hour)
	bad["other secret"] = [2]string{u, p}
	bad["no expiry"] = [2]string{"maria", pass}
	for what, cred := range bad {
		if _, _, err := allocate(t, srv, cred[0], cred[1]); err == nil {
			t.Errorf("%s credentials were accepted", what)
		}
	}
	if n := srv.Allocations(); n != 2 {
		t.Errorf("allocations after the refusals: %d, want 2", n)
	}
}
