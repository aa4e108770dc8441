package upstream

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Backend is SMART Backend Services authentication: carefront, registered
// at the EHR as a confidential client with a public key, asks the token
// endpoint for an access token with a JWT it signs itself.
type Backend struct {
	ClientID string
	// Key signs the client assertion: an ECDSA P-384 key (ES384) or an RSA
	// key (RS384). KeyID is its "kid" at the EHR's JWKS.
	Key   crypto.Signer
	KeyID string
	// TokenURL is the token endpoint; empty reads it from the server's
	// .well-known/smart-configuration.
	TokenURL string
	// Scope asked for; default "system/*.rs".
	Scope string

	c      *Client
	signer jose.Signer

	mu      sync.Mutex
	tok     string
	expires time.Time
}

// ParsePrivateKey reads a PEM private key (PKCS#8, SEC 1 or PKCS#1) for a
// Backend.
func ParsePrivateKey(pemText string) (crypto.Signer, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, errors.New("the upstream key is not PEM")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("the upstream key is not an ECDSA or RSA private key")
}

func (b *Backend) init(c *Client) error {
	b.c = c
	if b.ClientID == "" {
		return errors.New("SMART Backend Services needs a client id")
	}
	var alg jose.SignatureAlgorithm
	switch k := b.Key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P384() {
			return errors.New("the upstream ECDSA key must be on P-384 (ES384)")
		}
		alg = jose.ES384
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return errors.New("the upstream RSA key must have at least 2048 bits")
		}
		alg = jose.RS384
	default:
		return errors.New("the upstream key must be ECDSA P-384 or RSA")
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if b.KeyID != "" {
		opts = opts.WithHeader("kid", b.KeyID)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: b.Key}, opts)
	if err != nil {
		return err
	}
	b.signer = s
	if b.Scope == "" {
		b.Scope = "system/*.rs"
	}
	return nil
}

// token returns a cached access token, or a new one when it is within a
// minute of expiring (or fresh is set).
func (b *Backend) token(ctx context.Context, fresh bool) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.c.now()
	if !fresh && b.tok != "" && now.Before(b.expires) {
		return b.tok, nil
	}
	if b.TokenURL == "" {
		u, err := b.discover(ctx)
		if err != nil {
			return "", err
		}
		b.TokenURL = u
	}
	var jti [16]byte
	rand.Read(jti[:])
	assertion, err := jwt.Signed(b.signer).Claims(jwt.Claims{
		Issuer: b.ClientID, Subject: b.ClientID, Audience: jwt.Audience{b.TokenURL},
		Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute)), IssuedAt: jwt.NewNumericDate(now),
		ID: hex.EncodeToString(jti[:]),
	}).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign client assertion: %w", err)
	}
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"scope":                 {b.Scope},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := b.c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("token endpoint: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var oe struct {
			Error string `json:"error"`
		}
		json.Unmarshal(body, &oe)
		return "", fmt.Errorf("token endpoint answered %d %s", resp.StatusCode, oe.Error)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" || !strings.EqualFold(tr.TokenType, "bearer") {
		return "", errors.New("token endpoint sent no bearer token")
	}
	life := time.Duration(tr.ExpiresIn) * time.Second
	if life <= 0 {
		life = 5 * time.Minute
	}
	// Renew a minute early, or at 90% of a short life.
	b.tok, b.expires = tr.AccessToken, now.Add(max(life-time.Minute, life*9/10))
	return b.tok, nil
}

func (b *Backend) discover(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.c.base.String()+"/.well-known/smart-configuration", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := b.c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("smart-configuration: %w", err)
	}
	defer resp.Body.Close()
	var conf struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&conf) != nil || conf.TokenEndpoint == "" {
		return "", errors.New("the upstream server publishes no token endpoint in .well-known/smart-configuration")
	}
	u, err := url.Parse(conf.TokenEndpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != b.c.base.Scheme) {
		return "", errors.New("the upstream token endpoint is not an https URL")
	}
	return conf.TokenEndpoint, nil
}
