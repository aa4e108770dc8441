package oauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"

	jose "github.com/go-jose/go-jose/v4"

	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/sqldb"
)

// Client kinds: how an app proves who it is at the token endpoint.
const (
	// KindPublic is an app with no secret (in a browser or on a phone):
	// PKCE alone binds its code to it.
	KindPublic = "public"
	// KindSecret is a confidential app with a client secret
	// (client_secret_basic or client_secret_post).
	KindSecret = "secret"
	// KindJWKS is a confidential app that signs a client assertion
	// (private_key_jwt, RS384 or ES384) with a key from its JWKS.
	KindJWKS = "jwks"
)

// AssertionAlgs are the client assertion algorithms SMART asks for.
var AssertionAlgs = []jose.SignatureAlgorithm{jose.RS384, jose.ES384}

// Client is a registered app.
type Client struct {
	ID           string
	Name         string
	Kind         string
	JWKS         *jose.JSONWebKeySet // KindJWKS with keys given inline
	JWKSURL      string              // KindJWKS with keys at a URL
	RedirectURIs []string
	LaunchURL    string // where the portal launches it from its app list
	Origins      []string
	// Reviewed says the clinic registered it; an app that registered
	// itself is shown to patients as not reviewed by their clinic.
	Reviewed  bool
	Created   time.Time
	CreatedBy string
	Disabled  time.Time // zero while it may connect

	secretHash []byte
}

// Active reports whether the app may get and use tokens.
func (c *Client) Active() bool { return c.Disabled.IsZero() }

// Public reports whether the app has no means to authenticate itself.
func (c *Client) Public() bool { return c.Kind == KindPublic }

// RedirectAllowed reports whether uri is one of the app's redirect URIs,
// compared exactly (no prefixes, no normalization).
func (c *Client) RedirectAllowed(uri string) bool { return slices.Contains(c.RedirectURIs, uri) }

// OriginAllowed reports whether a browser origin is one the app runs
// at (for CORS on discovery, token and FHIR endpoints).
func (c *Client) OriginAllowed(origin string) bool { return slices.Contains(c.Origins, origin) }

// CheckSecret reports whether secret is the app's, in constant time.
func (c *Client) CheckSecret(secret string) bool {
	if c.Kind != KindSecret || len(c.secretHash) != sha256.Size || secret == "" {
		return false
	}
	h := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(h[:], c.secretHash) == 1
}

// NewClient is an app to register.
type NewClient struct {
	Name         string
	Kind         string
	RedirectURIs []string
	JWKS         []byte // a JWKS document (KindJWKS), or
	JWKSURL      string // where the app publishes its JWKS (KindJWKS)
	LaunchURL    string
	Origins      []string
	Reviewed     bool
	By           string // who registers it: the clinic's tool, or "dynamic-registration"
	Address      string
}

// Clients is the registry of apps.
type Clients struct {
	DB    *sqldb.DB
	Audit *audit.Writer
	// Production refuses plain http redirect, launch and JWKS URLs
	// (loopback redirects excepted, as RFC 8252 allows native apps).
	Production bool

	mu        sync.Mutex
	jwks      map[string]cachedJWKS // fetched key sets, by URL
	origins   map[string]bool       // origins of active apps, read at originsAt
	originsAt time.Time
}

// ErrUnknownClient means no registered app has the id.
var ErrUnknownClient = apperr.New(apperr.NotFound, "no registered app has that client id")

// Add registers an app and returns it with its secret (KindSecret only;
// shown once, kept only as a hash). A registration with a bad name, URL,
// origin or key set is Invalid and writes nothing but its audit record.
func (s *Clients) Add(ctx context.Context, n NewClient) (*Client, string, error) {
	c, err := s.check(n)
	if err != nil {
		rec := audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypeClientRegistry},
			Action: audit.Create, Outcome: audit.MinorFailure, Reason: "client-refused", Client: n.By, Address: n.Address}
		if aerr := s.Audit.Append(ctx, rec); aerr != nil {
			return nil, "", aerr
		}
		return nil, "", err
	}
	var id [16]byte
	rand.Read(id[:])
	c.ID = hex.EncodeToString(id[:])
	c.Created = s.DB.Now().UTC()
	var secret string
	if c.Kind == KindSecret {
		var b [32]byte
		rand.Read(b[:])
		secret = base64.RawURLEncoding.EncodeToString(b[:])
		h := sha256.Sum256([]byte(secret))
		c.secretHash = h[:]
	}
	var jwks sql.NullString
	if c.JWKS != nil {
		b, err := json.Marshal(c.JWKS)
		if err != nil {
			return nil, "", err
		}
		jwks = sql.NullString{String: string(b), Valid: true}
	}
	rec := audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypeClientRegistry},
		Action: audit.Create, Outcome: audit.Success, Reason: "client-added", Client: n.By, Address: n.Address,
		Entities: []audit.Entity{{What: "Device/" + c.ID}}}
	err = s.DB.Write(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO oauth_client (id, name, kind, secret_hash, jwks, jwks_url, redirect_uris, launch_url, origins, reviewed, created, created_by)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, c.ID, c.Name, c.Kind, c.secretHash, jwks, nullable(c.JWKSURL),
			strings.Join(c.RedirectURIs, "\n"), nullable(c.LaunchURL), strings.Join(c.Origins, "\n"), c.Reviewed, c.Created.UnixMicro(), c.CreatedBy); err != nil {
			return err
		}
		return s.Audit.Stage(ctx, tx, rec)
	})
	if err != nil {
		return nil, "", fmt.Errorf("oauth: add client: %w", err)
	}
	if err := s.Audit.Chain(ctx); err != nil {
		return nil, "", err
	}
	return c, secret, nil
}

// check validates a registration and returns the client it makes.
func (s *Clients) check(n NewClient) (*Client, error) {
	name := strings.TrimSpace(n.Name)
	if name == "" || len(name) > 100 || strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return nil, apperr.New(apperr.Invalid, "give the app a name of 1 to 100 printable characters; patients see it")
	}
	c := &Client{Name: name, Kind: n.Kind, Reviewed: n.Reviewed, CreatedBy: n.By}
	if len(n.RedirectURIs) == 0 {
		return nil, apperr.New(apperr.Invalid, "give at least one redirect URI")
	}
	for _, u := range n.RedirectURIs {
		if err := s.checkURL("redirect URI", u, n.Kind == KindPublic); err != nil {
			return nil, err
		}
		if !slices.Contains(c.RedirectURIs, u) {
			c.RedirectURIs = append(c.RedirectURIs, u)
		}
	}
	if n.LaunchURL != "" {
		if err := s.checkURL("launch URL", n.LaunchURL, false); err != nil {
			return nil, err
		}
		c.LaunchURL = n.LaunchURL
	}
	for _, o := range n.Origins {
		if err := s.checkOrigin(o); err != nil {
			return nil, err
		}
		if !slices.Contains(c.Origins, o) {
			c.Origins = append(c.Origins, o)
		}
	}
	switch n.Kind {
	case KindPublic, KindSecret:
		if len(n.JWKS) > 0 || n.JWKSURL != "" {
			return nil, apperr.New(apperr.Invalid, "a %s app has no key set; register it with keys instead", n.Kind)
		}
	case KindJWKS:
		switch {
		case (len(n.JWKS) > 0) == (n.JWKSURL != ""):
			return nil, apperr.New(apperr.Invalid, "give the app's keys either as a JWKS document or as a JWKS URL, one of them")
		case n.JWKSURL != "":
			if err := s.checkURL("JWKS URL", n.JWKSURL, false); err != nil {
				return nil, err
			}
			if s.Production {
				if err := PublicHost(n.JWKSURL); err != nil {
					return nil, err
				}
			}
			c.JWKSURL = n.JWKSURL
		default:
			set, err := ParseJWKS(n.JWKS)
			if err != nil {
				return nil, err
			}
			c.JWKS = set
		}
	default:
		return nil, apperr.New(apperr.Invalid, "an app is public, has a secret, or has keys (%q is none of them)", n.Kind)
	}
	return c, nil
}

// checkURL checks an absolute URL the registry keeps: https, or plain
// http to a loopback address (a native app's redirect, RFC 8252) or
// anywhere outside production; a public (native) app's redirect URI may
// also use its private scheme ("com.example.app:/callback"). No
// fragment.
func (s *Clients) checkURL(what, raw string, privateScheme bool) error {
	u, err := url.Parse(raw)
	bad := func(why string) error {
		return apperr.New(apperr.Invalid, "%s %q %s", what, clip(raw), why)
	}
	switch {
	case err != nil || !u.IsAbs() || len(raw) > 2000:
		return bad("is not an absolute URL")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return bad("must not have a fragment")
	case u.User != nil:
		return bad("must not carry a user name or password")
	case u.Scheme == "https":
		if u.Host == "" {
			return bad("has no host")
		}
	case u.Scheme == "http":
		if u.Host == "" {
			return bad("has no host")
		}
		if s.Production && !loopback(u.Hostname()) {
			return bad("must use https (plain http only to 127.0.0.1, [::1] or localhost)")
		}
	case privateScheme && strings.Contains(u.Scheme, "."):
		// A native app's private-use scheme, reverse-domain style.
	default:
		return bad("must use https")
	}
	return nil
}

func (s *Clients) checkOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.HasSuffix(o, "/") {
		return apperr.New(apperr.Invalid, "origin %q must be scheme://host[:port], with nothing after it", clip(o))
	}
	if u.Scheme == "http" && s.Production && !loopback(u.Hostname()) {
		return apperr.New(apperr.Invalid, "origin %q must use https", clip(o))
	}
	return nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// PublicHost refuses a URL whose host is a literal private, loopback,
// link-local or unspecified address (what a JWKS URL must never reach
// in production; names are checked again where they are resolved).
func PublicHost(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return apperr.New(apperr.Invalid, "%q is not a URL", clip(raw))
	}
	h := u.Hostname()
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return apperr.New(apperr.Invalid, "%q points at this machine", clip(raw))
	}
	if ip := net.ParseIP(h); ip != nil && !PublicIP(ip) {
		return apperr.New(apperr.Invalid, "%q points at a private or local address", clip(raw))
	}
	return nil
}

// nonPublic are special-purpose ranges net.IP's predicates do not cover
// (shared address space, benchmarking, IETF protocol assignments,
// reserved, NAT64, documentation).
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("240.0.0.0/4"), netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"), netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("100::/64"),
}

// PublicIP reports whether ip is an address on the public internet.
func PublicIP(ip net.IP) bool {
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() {
		return false
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	a = a.Unmap()
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// ParseJWKS reads an app's public key set: at least one key, each a
// public RSA key of 2048 bits or more or a P-384 key, for RS384 or
// ES384 (SMART's client assertion algorithms); no private keys.
func ParseJWKS(b []byte) (*jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, apperr.New(apperr.Invalid, "the key set is not a JWKS document (%s)", clip(err.Error()))
	}
	if len(set.Keys) == 0 || len(set.Keys) > 20 {
		return nil, apperr.New(apperr.Invalid, "the key set must hold 1 to 20 keys")
	}
	for i, k := range set.Keys {
		if !k.IsPublic() {
			return nil, apperr.New(apperr.Invalid, "key %d of the set is private; give the public key only", i+1)
		}
		if k.Use != "" && k.Use != "sig" {
			return nil, apperr.New(apperr.Invalid, "key %d is for %q, not for signing", i+1, k.Use)
		}
		switch pub := k.Key.(type) {
		case *rsa.PublicKey:
			if pub.N.BitLen() < 2048 || (k.Algorithm != "" && k.Algorithm != string(jose.RS384)) {
				return nil, apperr.New(apperr.Invalid, "key %d must be an RSA key of 2048 bits or more for RS384", i+1)
			}
		case *ecdsa.PublicKey:
			if pub.Curve != elliptic.P384() || (k.Algorithm != "" && k.Algorithm != string(jose.ES384)) {
				return nil, apperr.New(apperr.Invalid, "key %d must be a P-384 key for ES384", i+1)
			}
		default:
			return nil, apperr.New(apperr.Invalid, "key %d is neither RSA nor P-384", i+1)
		}
	}
	return &set, nil
}

const clientCols = "id, name, kind, secret_hash, jwks, jwks_url, redirect_uris, launch_url, origins, reviewed, created, created_by, disabled_at"

func scanClient(row interface{ Scan(...any) error }) (*Client, error) {
	var c Client
	var jwks, jwksURL, launch sql.NullString
	var redirects, origins string
	var created int64
	var disabled sql.NullInt64
	if err := row.Scan(&c.ID, &c.Name, &c.Kind, &c.secretHash, &jwks, &jwksURL, &redirects, &launch, &origins, &c.Reviewed, &created, &c.CreatedBy, &disabled); err != nil {
		return nil, err
	}
	if jwks.Valid {
		var set jose.JSONWebKeySet
		if err := json.Unmarshal([]byte(jwks.String), &set); err != nil {
			return nil, fmt.Errorf("oauth: client %s: stored key set: %w", c.ID, err)
		}
		c.JWKS = &set
	}
	c.JWKSURL, c.LaunchURL = jwksURL.String, launch.String
	c.RedirectURIs = strings.Split(redirects, "\n")
	if origins != "" {
		c.Origins = strings.Split(origins, "\n")
	}
	c.Created = time.UnixMicro(created).UTC()
	if disabled.Valid {
		c.Disabled = time.UnixMicro(disabled.Int64).UTC()
	}
	return &c, nil
}

// Get returns a registered app, disabled or not; ErrUnknownClient when
// there is none.
func (s *Clients) Get(ctx context.Context, id string) (*Client, error) {
	if id == "" || len(id) > 100 {
		return nil, ErrUnknownClient
	}
	var c *Client
	err := s.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
		var err error
		c, err = scanClient(tx.QueryRow(ctx, "SELECT "+clientCols+" FROM oauth_client WHERE id = ?", id))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrUnknownClient
	}
	return c, err
}

// Name is a registered app's name, "" when it is unknown or cannot be
// read (the access log names apps with it).
func (s *Clients) Name(ctx context.Context, id string) string {
	c, err := s.Get(ctx, id)
	if err != nil {
		return ""
	}
	return c.Name
}

// List returns every registered app, newest first.
func (s *Clients) List(ctx context.Context) ([]Client, error) {
	var out []Client
	err := s.DB.Read(ctx, func(tx *sqldb.Tx) error {
		rows, err := tx.Query(ctx, "SELECT "+clientCols+" FROM oauth_client ORDER BY created DESC, id")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			c, err := scanClient(rows)
			if err != nil {
				return err
			}
			out = append(out, *c)
		}
		return rows.Err()
	})
	return out, err
}

// Disable stops an app: it gets no more tokens, and the tokens it holds
// stop working at their next use (every use checks the app). Disabling
// an app that is disabled already, or unknown, is ErrUnknownClient.
func (s *Clients) Disable(ctx context.Context, id, by string) error {
	now := s.DB.Now().UTC()
	rec := audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypeClientRegistry},
		Action: audit.Update, Outcome: audit.Success, Reason: "client-disabled", Client: by,
		Entities: []audit.Entity{{What: "Device/" + id}}}
	err := s.DB.Write(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, "UPDATE oauth_client SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL", now.UnixMicro(), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrUnknownClient
		}
		return s.Audit.Stage(ctx, tx, rec)
	})
	if errors.Is(err, ErrUnknownClient) {
		return err
	}
	if err != nil {
		return fmt.Errorf("oauth: disable client: %w", err)
	}
	return s.Audit.Chain(ctx)
}

func nullable(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// jwksFetchTimeout and maxJWKSBytes bound fetching an app's JWKS URL;
// jwksCacheFor is how long a fetched set is used.
const (
	jwksFetchTimeout = 5 * time.Second
	maxJWKSBytes     = 64 << 10
	jwksCacheFor     = 10 * time.Minute
)

type cachedJWKS struct {
	at  time.Time
	set *jose.JSONWebKeySet
}

// KeysOf returns an app's public keys: those registered with it, or
// those at its JWKS URL, fetched over HTTPS in production (never from a
// private or loopback address), within 5 seconds and 64 KiB, and cached
// for 10 minutes.
func (s *Clients) KeysOf(ctx context.Context, c *Client) (*jose.JSONWebKeySet, error) {
	if c.JWKS != nil {
		return c.JWKS, nil
	}
	if c.JWKSURL == "" {
		return nil, errors.New("the app has no keys")
	}
	s.mu.Lock()
	if e, ok := s.jwks[c.JWKSURL]; ok && time.Since(e.at) < jwksCacheFor {
		s.mu.Unlock()
		return e.set, nil
	}
	s.mu.Unlock()
	if s.Production && !strings.HasPrefix(c.JWKSURL, "https://") {
		return nil, errors.New("the JWKS URL is not https")
	}
	ctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.JWKSURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching the JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching the JWKS: status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil || len(b) > maxJWKSBytes {
		return nil, errors.New("the JWKS is unreadable or larger than 64 KiB")
	}
	set, err := ParseJWKS(b)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.jwks == nil || len(s.jwks) > 1000 {
		s.jwks = map[string]cachedJWKS{}
	}
	s.jwks[c.JWKSURL] = cachedJWKS{at: time.Now(), set: set}
	s.mu.Unlock()
	return set, nil
}

// httpClient fetches JWKS URLs; in production its dialer refuses
// private, loopback and link-local addresses whatever the name
// resolves to, and it follows no redirects.
func (s *Clients) httpClient() *http.Client {
	d := &net.Dialer{Timeout: jwksFetchTimeout}
	if s.Production {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if ip := net.ParseIP(host); ip == nil || !PublicIP(ip) {
				return fmt.Errorf("%s is not a public address", host)
			}
			return nil
		}
	}
	return &http.Client{
		Timeout:       jwksFetchTimeout,
		Transport:     &http.Transport{DialContext: d.DialContext, TLSHandshakeTimeout: jwksFetchTimeout, ResponseHeaderTimeout: jwksFetchTimeout},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// originsFor is how long the set of registered origins is used before it
// is read again.
const originsFor = time.Minute

// OriginRegistered reports whether an active app registered origin (a
// browser app's scheme://host[:port]), for CORS on the endpoints apps
// call; the set is read at most once a minute.
func (s *Clients) OriginRegistered(ctx context.Context, origin string) (bool, error) {
	if origin == "" {
		return false, nil
	}
	s.mu.Lock()
	if s.origins != nil && time.Since(s.originsAt) < originsFor {
		ok := s.origins[origin]
		s.mu.Unlock()
		return ok, nil
	}
	s.mu.Unlock()
	set := map[string]bool{}
	err := s.DB.Read(ctx, func(tx *sqldb.Tx) error {
		rows, err := tx.Query(ctx, "SELECT origins FROM oauth_client WHERE disabled_at IS NULL AND origins <> ''")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var list string
			if err := rows.Scan(&list); err != nil {
				return err
			}
			for _, o := range strings.Split(list, "\n") {
				set[o] = true
			}
		}
		return rows.Err()
	})
	if err != nil {
		return false, fmt.Errorf("oauth: origins: %w", err)
	}
	s.mu.Lock()
	s.origins, s.originsAt = set, time.Now()
	s.mu.Unlock()
	return set[origin], nil
}
