package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"carefront/internal/sqldb"
)

// errNotUsed answers storage methods of flows carefront's Server does
// itself (tokens, introspection) or refuses.
var errNotUsed = errors.New("oauth: not used: carefront's Server handles this itself")

// storage is op.Storage over carefront's Flow, Clients and Keys. Only
// what the authorize endpoint, its callback and the ID token need is
// used; the token flows are the Server's own.
type storage struct{ o *Options }

func (s *storage) CreateAuthRequest(context.Context, *oidc.AuthRequest, string) (op.AuthRequest, error) {
	return nil, errNotUsed // Server.Authorize keeps the request
}

func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	r, err := s.o.Flow.Request(ctx, id)
	if err != nil {
		return nil, oidc.ErrInvalidRequest().WithDescription("the sign-in request has expired")
	}
	return &authRequest{r}, nil
}

func (s *storage) AuthRequestByCode(context.Context, string) (op.AuthRequest, error) {
	return nil, errNotUsed
}

func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	return s.o.Flow.SaveCode(ctx, id, code)
}

func (s *storage) DeleteAuthRequest(context.Context, string) error { return nil }

func (s *storage) CreateAccessToken(context.Context, op.TokenRequest) (string, time.Time, error) {
	return "", time.Time{}, errNotUsed
}

func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errNotUsed
}

func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, errNotUsed
}

func (s *storage) TerminateSession(context.Context, string, string) error { return errNotUsed }

func (s *storage) RevokeToken(context.Context, string, string, string) *oidc.Error {
	return oidc.ErrServerError().WithParent(errNotUsed)
}

func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

func (s *storage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	k, err := s.o.Keys.Current(ctx)
	if err != nil {
		return nil, err
	}
	return signingKey{k}, nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{SigningAlg}, nil
}

func (s *storage) KeySet(ctx context.Context) ([]op.Key, error) {
	ks, err := s.o.Keys.Published(ctx)
	if err != nil {
		return nil, err
	}
	if len(ks) == 0 { // no key made yet: make the first
		k, err := s.o.Keys.Current(ctx)
		if err != nil {
			return nil, err
		}
		ks = append(ks, k)
	}
	out := make([]op.Key, len(ks))
	for i, k := range ks {
		out[i] = publicKey{k}
	}
	return out, nil
}

func (s *storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.o.Clients.Get(ctx, id)
	if err != nil || !c.Active() {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown or disabled client")
	}
	return &client{c, *s.o}, nil
}

func (s *storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	c, err := s.o.Clients.Get(ctx, id)
	if err != nil || !c.Active() || !c.CheckSecret(secret) {
		return oidc.ErrInvalidClient()
	}
	return nil
}

func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest puts fhirUser in the ID token (op.CanSetUserinfoFromRequest).
func (s *storage) SetUserinfoFromRequest(_ context.Context, u *oidc.UserInfo, r op.IDTokenRequest, scopes []string) error {
	req, ok := r.(*idTokenRequest)
	if !ok {
		return nil
	}
	u.Subject = req.grant.Account // the claims take the subject from here
	if !slices.Contains(scopes, ScopeFHIRUser) {
		return nil
	}
	u.AppendClaims("fhirUser", strings.TrimSuffix(s.o.Issuer, "/")+PathFHIR+"/"+req.grant.FHIRUser)
	return nil
}

func (s *storage) SetUserinfoFromToken(context.Context, *oidc.UserInfo, string, string, string) error {
	return errNotUsed
}

func (s *storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errNotUsed
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNotUsed
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, oidc.ErrUnsupportedGrantType()
}

func (s *storage) Health(ctx context.Context) error {
	return s.o.Flow.DB.Ready(ctx)
}

// signingKey and publicKey adapt SigningKey to zitadel's key types.
type signingKey struct{ k *SigningKey }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return SigningAlg }
func (k signingKey) Key() any                                    { return k.k.Private }
func (k signingKey) ID() string                                  { return k.k.ID }

type publicKey struct{ k *SigningKey }

func (k publicKey) ID() string                         { return k.k.ID }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return SigningAlg }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.k.Private.PublicKey }

// authRequest is a Request as zitadel's callback reads it.
type authRequest struct{ r *Request }

func (a *authRequest) GetID() string         { return a.r.ID }
func (a *authRequest) GetACR() string        { return "" }
func (a *authRequest) GetAMR() []string      { return a.r.AMR }
func (a *authRequest) GetAudience() []string { return []string{a.r.ClientID} }
func (a *authRequest) GetAuthTime() time.Time {
	return a.r.AuthTime
}
func (a *authRequest) GetClientID() string { return a.r.ClientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	return &oidc.CodeChallenge{Challenge: a.r.Challenge, Method: oidc.CodeChallengeMethodS256}
}
func (a *authRequest) GetNonce() string                   { return a.r.Nonce }
func (a *authRequest) GetRedirectURI() string             { return a.r.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType { return oidc.ResponseTypeCode }
func (a *authRequest) GetResponseMode() oidc.ResponseMode {
	return oidc.ResponseMode(a.r.ResponseMode)
}
func (a *authRequest) GetScopes() []string {
	out := make([]string, len(a.r.Scopes))
	for i, s := range a.r.Scopes {
		out[i] = s.String()
	}
	return out
}
func (a *authRequest) GetState() string   { return a.r.State }
func (a *authRequest) GetSubject() string { return a.r.GrantID }
func (a *authRequest) Done() bool         { return a.r.GrantID != "" }

// idTokenRequest is what the ID token is made from: the redeemed
// request (an op.AuthRequest, so its nonce is kept) and the grant it
// was approved with.
type idTokenRequest struct {
	*authRequest
	grant  *Grant
	scopes []Scope
}

func (r *idTokenRequest) GetScopes() []string {
	out := make([]string, len(r.scopes))
	for i, s := range r.scopes {
		out[i] = s.String()
	}
	return out
}
func (r *idTokenRequest) GetSubject() string { return r.grant.Account }

// client is a registered app as zitadel reads it.
type client struct {
	*Client
	o Options
}

func (c *client) GetID() string                    { return c.ID }
func (c *client) RedirectURIs() []string           { return c.Client.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return nil }
func (c *client) ApplicationType() op.ApplicationType {
	if c.Public() {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}
func (c *client) AuthMethod() oidc.AuthMethod {
	switch c.Kind {
	case KindSecret:
		return oidc.AuthMethodBasic
	case KindJWKS:
		return oidc.AuthMethodPrivateKeyJWT
	}
	return oidc.AuthMethodNone
}
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (c *client) LoginURL(id string) string           { return c.o.LoginPath + "?request=" + id }
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration      { return IDTokenTTL }
func (c *client) DevMode() bool                       { return !c.o.Production }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) IsScopeAllowed(scope string) bool {
	_, err := ParseScope(scope)
	return err == nil
}
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }

// verifyS256 checks a PKCE verifier against its S256 challenge.
func verifyS256(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	h := sha256.Sum256([]byte(verifier))
	want := base64.RawURLEncoding.EncodeToString(h[:])
	return subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) == 1
}

// maxAssertionLife bounds how far ahead a client assertion may expire.
const maxAssertionLife = 5 * time.Minute

// verifyAssertion checks a private_key_jwt client assertion (RFC 7523,
// SMART's asymmetric client authentication): RS384 or ES384 only, signed
// by a key of the app's JWKS, iss and sub the app, aud the token URL,
// exp no more than 5 minutes ahead, and a jti never seen before (kept
// until it expires).
func (s *Server) verifyAssertion(ctx context.Context, typ, assertion, clientID string) (*Client, error) {
	if typ != oidc.ClientAssertionTypeJWTAssertion {
		return nil, errors.New("client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	}
	tok, err := jwt.ParseSigned(assertion, AssertionAlgs)
	if err != nil {
		return nil, errors.New("the client assertion is not a JWT signed with RS384 or ES384")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil || unverified.Issuer == "" {
		return nil, errors.New("the client assertion names no issuer")
	}
	if clientID != "" && clientID != unverified.Issuer {
		return nil, errors.New("client_id and the assertion's issuer differ")
	}
	c, err := s.o.Clients.Get(ctx, unverified.Issuer)
	if err != nil || !c.Active() || c.Kind != KindJWKS {
		return nil, errors.New("unknown or disabled app, or one without keys")
	}
	keys, err := s.o.Clients.KeysOf(ctx, c)
	if err != nil {
		return nil, errors.New("the app's keys cannot be read") // the reason may name internal addresses
	}
	var claims jwt.Claims
	verified := false
	for _, h := range tok.Headers {
		for _, k := range keys.Keys {
			if (h.KeyID == "" || h.KeyID == k.KeyID) && tok.Claims(k.Key, &claims) == nil {
				verified = true
				break
			}
		}
	}
	if !verified {
		return nil, errors.New("the client assertion's signature matches none of the app's keys")
	}
	now := s.o.Flow.now()
	tokenURL := strings.TrimSuffix(s.o.Issuer, "/") + PathToken
	if err := claims.ValidateWithLeeway(jwt.Expected{Issuer: c.ID, Subject: c.ID, AnyAudience: jwt.Audience{tokenURL}, Time: now}, 30*time.Second); err != nil {
		return nil, fmt.Errorf("the client assertion is not valid here: %v", err)
	}
	if claims.Expiry == nil || claims.Expiry.Time().After(now.Add(maxAssertionLife)) || claims.ID == "" || len(claims.ID) > 256 {
		return nil, errors.New("the client assertion needs exp within 5 minutes and a jti of at most 256 characters")
	}
	seen := false
	err = s.o.Flow.DB.Write(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM oauth_jti WHERE expires < ?", now.UnixMicro()); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM oauth_jti WHERE client_id = ? AND jti = ?", c.ID, claims.ID).Scan(&n); err != nil {
			return err
		}
		if seen = n > 0; seen {
			return nil
		}
		_, err := tx.Exec(ctx, "INSERT INTO oauth_jti (client_id, jti, expires) VALUES (?, ?, ?)", c.ID, claims.ID, claims.Expiry.Time().Add(30*time.Second).UnixMicro())
		return err
	})
	switch {
	case seen:
		return nil, errors.New("the client assertion's jti was used before")
	case err != nil:
		// Two uses of one jti at once: the second insert collides.
		return nil, errors.New("the client assertion could not be checked; try again with a new jti")
	}
	return c, nil
}
