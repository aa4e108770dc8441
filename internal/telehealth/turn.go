package telehealth

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v5"
)

// CredentialTTL is how long the TURN credentials a visit page is given
// work: longer than any visit, so a call is never cut, and no longer.
const CredentialTTL = 4 * time.Hour

// clockLeeway lets a credential from an instance whose clock runs a
// little ahead be accepted.
const clockLeeway = time.Minute

// TURNCredentials returns time-limited TURN credentials for user in the
// TURN REST scheme coturn accepts with use-auth-secret (username
// "EXPIRY:USER", password base64 HMAC-SHA1 of the username under the
// shared secret), so the same credentials work with the embedded server
// and with a clinic's own coturn. user is hashed: nothing on the TURN
// server names a person.
func TURNCredentials(secret []byte, user string, now time.Time, ttl time.Duration) (username, password string) {
	h := sha256.Sum256([]byte(user))
	username = strconv.FormatInt(now.Add(ttl).Unix(), 10) + ":" + hex.EncodeToString(h[:8])
	mac := hmac.New(sha1.New, secret)
	mac.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// TURN is the embedded TURN server (github.com/pion/turn) that relays a
// visit's media when the browsers cannot reach each other directly. It
// accepts only the credentials TURNCredentials makes with its secret,
// while they last (and none that claim to last longer than
// CredentialTTL), and relays only to public addresses and its own relay
// address: never into the network it runs in.
type TURN struct {
	// Listen is the UDP address to listen on, like "0.0.0.0:3478".
	Listen string
	// PublicIP is the address browsers reach it at, also the relay
	// address it announces.
	PublicIP net.IP
	Realm    string
	Secret   []byte
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	server *turn.Server
	conn   net.PacketConn
}

// Start listens and serves until Close.
func (t *TURN) Start() error {
	if len(t.Secret) < 16 {
		return errors.New("turn: the shared secret must be at least 16 bytes")
	}
	if t.PublicIP == nil {
		return errors.New("turn: a public IP address is needed (--turn-public-ip)")
	}
	conn, err := net.ListenPacket("udp", t.Listen)
	if err != nil {
		return fmt.Errorf("turn: listen on %s: %w", t.Listen, err)
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelWarn
	s, err := turn.NewServer(turn.ServerConfig{
		Realm:         t.Realm,
		AuthHandler:   t.authenticate,
		LoggerFactory: lf,
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            conn,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{RelayAddress: t.PublicIP, Address: "0.0.0.0"},
			PermissionHandler:     t.permit,
		}},
	})
	if err != nil {
		conn.Close()
		return fmt.Errorf("turn: %w", err)
	}
	t.server, t.conn = s, conn
	return nil
}

// Addr is where it listens.
func (t *TURN) Addr() net.Addr { return t.conn.LocalAddr() }

// URL is the turn: URL browsers are given.
func (t *TURN) URL() string {
	_, port, _ := net.SplitHostPort(t.Addr().String())
	return "turn:" + net.JoinHostPort(t.PublicIP.String(), port) + "?transport=udp"
}

// Allocations counts the relays in use.
func (t *TURN) Allocations() int { return t.server.AllocationCount() }

// Close stops it.
func (t *TURN) Close() error {
	if t.server == nil {
		return nil
	}
	return t.server.Close()
}

func (t *TURN) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// authenticate checks a TURN REST username: not expired, not claiming
// more than CredentialTTL, and its key derived from the secret.
func (t *TURN) authenticate(ra *turn.RequestAttributes) (string, []byte, bool) {
	expiry, user, ok := strings.Cut(ra.Username, ":")
	if !ok || user == "" || ra.Realm != t.Realm {
		return "", nil, false
	}
	exp, err := strconv.ParseInt(expiry, 10, 64)
	now := t.now()
	if err != nil || exp < now.Unix() || exp > now.Add(CredentialTTL+clockLeeway).Unix() {
		return "", nil, false
	}
	mac := hmac.New(sha1.New, t.Secret)
	mac.Write([]byte(ra.Username))
	password := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	return user, turn.GenerateAuthKey(ra.Username, ra.Realm, password), true
}

// permit lets a relay send to public addresses and to the server's own
// relay address (two relayed browsers), never to loopback, private,
// shared (CGNAT), link-local, multicast, reserved or translated
// addresses: a TURN server must not become a way into the clinic's (or
// its cloud's) network.
func (t *TURN) permit(_ net.Addr, peer net.IP) bool {
	if peer.Equal(t.PublicIP) {
		return true
	}
	a, ok := netip.AddrFromSlice(peer)
	if !ok {
		return false
	}
	a = a.Unmap()
	if !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	for _, p := range notRelayed {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// notRelayed are special-use ranges that pass IsGlobalUnicast and
// IsPrivate yet are no public peer (RFC 6890 and friends).
var notRelayed = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15", "198.51.100.0/24",
		"203.0.113.0/24", "240.0.0.0/4", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "2002::/16",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()
