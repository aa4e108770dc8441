package oauth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"carefront/internal/apperr"
	"carefront/internal/audit"
)

// Paths of the authorization server's endpoints.
const (
	PathAuthorize  = "/oauth/authorize"
	PathToken      = "/oauth/token"
	PathRevoke     = "/oauth/revoke"
	PathIntrospect = "/oauth/introspect"
	PathUserinfo   = "/oauth/userinfo"
	PathJWKS       = "/oauth/jwks"
	PathFHIR       = "/fhir/R4"
	// PathConsent is the portal's authorization screen (LoginPath).
	PathConsent = "/oauth/consent"
)

// IDTokenTTL is how long an ID token is valid.
const IDTokenTTL = time.Hour

// Bounds of an authorization request's scope list.
const (
	maxScopes     = 60
	maxScopeChars = 4096
)

// Options configure the authorization server.
type Options struct {
	// Issuer is carefront's base URL ("https://portal.example"); the
	// FHIR API, the apps' audience, is Issuer + PathFHIR.
	Issuer  string
	Flow    *Flow
	Clients *Clients
	Keys    *Keys
	// LoginPath is the portal page where the person signs in and answers
	// the request (it gets ?request=ID).
	LoginPath string
	// Production refuses plain http redirect URIs outside loopback.
	Production bool
	// DynamicRegistration offers RFC 7591 registration (Register) in the
	// discovery document.
	DynamicRegistration bool
}

// Server is carefront's OpenID Connect provider and SMART authorization
// server on zitadel/oidc's Server API: zitadel parses and validates the
// authorize request, sends the code and routes the token endpoint;
// carefront's own code decides what zitadel leaves open or does
// otherwise than SMART asks (docs/oauth.md): exact redirect URIs, PKCE
// S256 for every client, the aud parameter, the scope grammar, opaque
// hashed tokens with rotating refresh tokens (Flow), SMART fields and
// no-store on token responses, no ID token on refresh, client
// assertions with RS384/ES384 against the token URL and jti replay,
// introspection by the token's own bearer, and a truthful discovery
// document.
type Server struct {
	*op.LegacyServer
	o       Options
	storage *storage
}

// New builds the server and its HTTP handler, which serves every path
// under /oauth/ and /.well-known/openid-configuration.
func New(o Options) (*Server, http.Handler, error) {
	st := &storage{o: &o}
	cfg := &op.Config{CodeMethodS256: true, AuthMethodPost: true, AuthMethodPrivateKeyJWT: true, GrantTypeRefreshToken: true}
	opts := []op.Option{op.WithCrypto(randomCodes{})}
	if strings.HasPrefix(o.Issuer, "http://") {
		opts = append(opts, op.WithAllowInsecure())
	}
	p, err := op.NewProvider(cfg, st, op.StaticIssuer(o.Issuer), opts...)
	if err != nil {
		return nil, nil, err
	}
	endpoints := op.Endpoints{
		Authorization: op.NewEndpoint(PathAuthorize),
		Token:         op.NewEndpoint(PathToken),
		Userinfo:      op.NewEndpoint(PathUserinfo),
		Revocation:    op.NewEndpoint(PathRevoke),
		JwksURI:       op.NewEndpoint(PathJWKS),
	}
	s := &Server{LegacyServer: op.NewLegacyServer(p, endpoints), o: o, storage: st}
	inner := op.RegisterLegacyServer(s, s.callback(p), op.WithServerCORSOptions(nil))
	mux := http.NewServeMux()
	mux.Handle("/", inner)
	mux.HandleFunc("POST "+PathIntrospect, s.introspect)
	return s, noStore(mux), nil
}

// noStore marks every answer of the authorization server as one no
// cache may keep (tokens, codes, errors alike).
func noStore(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// AuthCallback is where the portal sends the person once they have
// approved request id, with the ticket Approve gave (the code is issued
// there, to that browser only).
func (s *Server) AuthCallback(id, ticket string) string {
	return strings.TrimSuffix(s.o.Issuer, "/") + PathAuthorize + "/callback?" + url.Values{"id": {id}, "ticket": {ticket}}.Encode()
}

// callback issues the code of an approved request to the browser that
// holds its ticket (spent on use); anyone else gets an error page.
func (s *Server) callback(p *op.Provider) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ok, err := s.o.Flow.UseTicket(r.Context(), r.FormValue("id"), r.FormValue("ticket"))
		if err != nil || !ok {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "this sign-in is no longer valid; go back to the app and start again")
			return
		}
		op.AuthorizeCallback(w, r, p)
	}
}

// FHIRBase is the FHIR API's URL, the audience apps must name.
func (s *Server) FHIRBase() string { return strings.TrimSuffix(s.o.Issuer, "/") + PathFHIR }

// refused writes an app's refused attempt to the audit trail (a failed
// client authentication, a code exchange that does not match); a trail
// that cannot be written fails the request.
func (s *Server) refused(ctx context.Context, reason, clientID string) error {
	if clientID == "" || len(clientID) > 100 {
		clientID = "unknown"
	}
	return s.o.Flow.Audit.Append(ctx, audit.Record{Type: audit.TypeUserAuthentication, Action: audit.Execute, Outcome: audit.MinorFailure,
		Reason: reason, Client: clientID, Entities: []audit.Entity{{What: "Device/" + clientID}}})
}

// randomCodes makes authorization codes: 256 random bits each, kept
// only as a hash (Flow.SaveCode); nothing is decrypted from them.
type randomCodes struct{}

func (randomCodes) Encrypt(string) (string, error) { return randomToken(), nil }
func (randomCodes) Decrypt(string) (string, error) {
	return "", errors.New("oauth: codes are looked up by hash, never decrypted")
}

// Discovery is the OpenID configuration, listing what carefront does
// (zitadel's own lists flows carefront refuses).
func (s *Server) Discovery(ctx context.Context, _ *op.Request[struct{}]) (*op.Response, error) {
	base := strings.TrimSuffix(s.o.Issuer, "/")
	doc := map[string]any{
		"issuer":                                           base,
		"authorization_endpoint":                           base + PathAuthorize,
		"token_endpoint":                                   base + PathToken,
		"userinfo_endpoint":                                base + PathUserinfo,
		"revocation_endpoint":                              base + PathRevoke,
		"introspection_endpoint":                           base + PathIntrospect,
		"jwks_uri":                                         base + PathJWKS,
		"end_session_endpoint":                             base + PathLogout,
		"scopes_supported":                                 plainScopes,
		"response_types_supported":                         []string{"code"},
		"response_modes_supported":                         []string{"query"},
		"grant_types_supported":                            []string{"authorization_code", "refresh_token"},
		"subject_types_supported":                          []string{"public"},
		"id_token_signing_alg_values_supported":            []string{string(SigningAlg)},
		"token_endpoint_auth_methods_supported":            []string{"none", "client_secret_basic", "client_secret_post", "private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": []string{string(jose.RS384), string(jose.ES384)},
		"code_challenge_methods_supported":                 []string{"S256"},
		"claims_supported":                                 []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "fhirUser"},
		"request_parameter_supported":                      false,
		"request_uri_parameter_supported":                  false,
	}
	if s.o.DynamicRegistration {
		doc["registration_endpoint"] = base + PathRegister
	}
	return op.NewResponse(doc), nil
}

// VerifyAuthRequest finds the app and holds its redirect URI to an
// exact match before anything else: an unknown app, a disabled one, or
// a redirect URI it did not register gets an error page, never a
// redirect.
func (s *Server) VerifyAuthRequest(ctx context.Context, r *op.Request[oidc.AuthRequest]) (*op.ClientRequest[oidc.AuthRequest], error) {
	c, err := s.o.Clients.Get(ctx, r.Data.ClientID)
	if err != nil || !c.Active() {
		return nil, oidc.ErrInvalidRequestRedirectURI().WithDescription("unknown or disabled client_id")
	}
	if !c.RedirectAllowed(r.Data.RedirectURI) {
		return nil, oidc.ErrInvalidRequestRedirectURI().WithDescription("redirect_uri is not one this app registered")
	}
	if r.Form == nil {
		r.Form = r.PostForm
	}
	return &op.ClientRequest[oidc.AuthRequest]{Request: r, Client: &client{c, s.o}}, nil
}

// Authorize checks what SMART asks of the request and keeps it, then
// sends the person to the portal to sign in and answer. Every refusal
// here goes back to the app's (verified) redirect URI.
func (s *Server) Authorize(ctx context.Context, r *op.ClientRequest[oidc.AuthRequest]) (*op.Redirect, error) {
	d := r.Data
	if d.RequestParam != "" {
		return nil, oidc.ErrRequestNotSupported()
	}
	if d.ResponseType != oidc.ResponseTypeCode {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("only response_type=code")
	}
	if d.CodeChallenge == "" || d.CodeChallengeMethod != oidc.CodeChallengeMethodS256 || len(d.CodeChallenge) < 43 || len(d.CodeChallenge) > 128 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE with code_challenge_method=S256 is required")
	}
	if aud := r.Form.Get("aud"); aud != s.FHIRBase() {
		return nil, oidc.ErrInvalidRequest().WithDescription("%s", "aud must be this server's FHIR base URL, "+s.FHIRBase())
	}
	raw := r.Form.Get("scope")
	if len(raw) > maxScopeChars || len(strings.Fields(raw)) > maxScopes {
		return nil, oidc.ErrInvalidScope().WithDescription("too many scopes")
	}
	scopes, err := ParseScopes(raw)
	if err != nil || len(scopes) == 0 {
		desc := "scope is missing"
		if err != nil {
			desc = strings.NewReplacer(`"`, "'", `\`, "").Replace(err.Error()) // error_description allows no " or \
		}
		return nil, oidc.ErrInvalidScope().WithDescription("%s", desc)
	}
	launch := ""
	for _, sc := range scopes {
		if sc.Plain == ScopeLaunch {
			// An app opened from the portal: the launch value names the
			// record (and who opened it).
			value := r.Form.Get("launch")
			if value == "" || len(value) > 100 {
				return nil, oidc.ErrInvalidRequest().WithDescription("the launch is unknown or expired; open the app again from the portal")
			}
			launch = launchKey(value)
			if _, err := s.o.Flow.launchOf(ctx, d.ClientID, launch); err != nil {
				return nil, oidc.ErrInvalidRequest().WithDescription("the launch is unknown or expired; open the app again from the portal")
			}
		}
		if sc.Resource() && sc.Context == "system" {
			return nil, oidc.ErrInvalidScope().WithDescription("%s", sc.String()+": system scopes are not offered to apps acting for a person")
		}
	}
	if slices.Contains(d.Prompt, oidc.PromptNone) {
		// Every grant is made on the authorization screen, by a person.
		return nil, oidc.ErrInteractionRequired().WithDescription("carefront always asks the person; prompt=none cannot be honoured")
	}
	if d.State == "" || len(d.State) > 1024 || len(d.Nonce) > 1024 {
		return nil, oidc.ErrInvalidRequest().WithDescription("state is required (SMART), and state and nonce are at most 1024 characters")
	}
	mode := string(d.ResponseMode)
	switch mode {
	case "":
		mode = string(oidc.ResponseModeQuery)
	case string(oidc.ResponseModeQuery):
	default:
		// form_post would need a page that posts to the app, which the
		// portal's content security policy forbids; SMART asks only query.
		return nil, oidc.ErrInvalidRequest().WithDescription("response_mode must be query")
	}
	req, err := s.o.Flow.CreateRequest(ctx, Request{ClientID: d.ClientID, RedirectURI: d.RedirectURI, Scopes: scopes,
		State: d.State, Nonce: d.Nonce, Challenge: d.CodeChallenge, ResponseMode: mode, Launch: launch})
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	return op.NewRedirect(s.o.LoginPath + "?request=" + req.ID), nil
}

// VerifyClient authenticates the app at the token and revocation
// endpoints: a public app by its id (PKCE binds the code to it), a
// confidential one by its secret or its signed assertion.
func (s *Server) VerifyClient(ctx context.Context, r *op.Request[op.ClientCredentials]) (op.Client, error) {
	c, err := s.verifyClient(ctx, r)
	if err != nil {
		if aerr := s.refused(ctx, "client-authentication-failed", r.Data.ClientID); aerr != nil {
			return nil, oidc.ErrServerError().WithParent(aerr)
		}
	}
	return c, err
}

func (s *Server) verifyClient(ctx context.Context, r *op.Request[op.ClientCredentials]) (op.Client, error) {
	cc := r.Data
	if cc.ClientAssertionType != "" || cc.ClientAssertion != "" {
		c, err := s.verifyAssertion(ctx, cc.ClientAssertionType, cc.ClientAssertion, cc.ClientID)
		if err != nil {
			return nil, oidc.ErrInvalidClient().WithDescription("%s", err.Error())
		}
		return &client{c, s.o}, nil
	}
	c, err := s.o.Clients.Get(ctx, cc.ClientID)
	if err != nil || !c.Active() {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown or disabled client")
	}
	switch c.Kind {
	case KindPublic:
		if cc.ClientSecret != "" {
			return nil, oidc.ErrInvalidClient().WithDescription("a public app has no secret")
		}
	case KindSecret:
		if !c.CheckSecret(cc.ClientSecret) {
			return nil, oidc.ErrInvalidClient().WithDescription("wrong client secret")
		}
	default:
		return nil, oidc.ErrInvalidClient().WithDescription("this app authenticates with a signed client assertion")
	}
	return &client{c, s.o}, nil
}

// tokenResponse is the token endpoint's answer with SMART's fields.
type tokenResponse struct {
	AccessToken       string `json:"access_token"`
	TokenType         string `json:"token_type"`
	ExpiresIn         int64  `json:"expires_in"`
	Scope             string `json:"scope"`
	RefreshToken      string `json:"refresh_token,omitempty"`
	IDToken           string `json:"id_token,omitempty"`
	Patient           string `json:"patient,omitempty"`
	NeedPatientBanner bool   `json:"need_patient_banner"`
}

func (s *Server) respond(t *Tokens, idToken string) *op.Response {
	resp := tokenResponse{AccessToken: t.Access, TokenType: "Bearer", ExpiresIn: int64(time.Until(t.AccessExpires).Round(time.Second) / time.Second),
		Scope: Format(t.Scopes), RefreshToken: t.Refresh, IDToken: idToken, NeedPatientBanner: true}
	if slices.ContainsFunc(t.Scopes, func(sc Scope) bool {
		return sc.Plain == ScopeLaunchPatient || (sc.Resource() && sc.Context == "patient")
	}) {
		resp.Patient = t.Grant.Patient
	}
	r := op.NewResponse(resp)
	r.Header.Set("Cache-Control", "no-store")
	r.Header.Set("Pragma", "no-cache")
	return r
}

// CodeExchange redeems a code once, checks it is this app's, the same
// redirect URI and the PKCE verifier (for every app), and issues the
// tokens, with an ID token when openid was granted.
func (s *Server) CodeExchange(ctx context.Context, r *op.ClientRequest[oidc.AccessTokenRequest]) (*op.Response, error) {
	var mismatch *oidc.Error
	req, t, err := s.o.Flow.Exchange(ctx, r.Data.Code, func(req *Request) error {
		switch {
		case req.ClientID != r.Client.GetID():
			mismatch = oidc.ErrInvalidGrant().WithDescription("the code was issued to another app")
		case req.RedirectURI != r.Data.RedirectURI:
			mismatch = oidc.ErrInvalidGrant().WithDescription("redirect_uri does not match the authorization request")
		case r.Data.CodeVerifier == "" || !verifyS256(r.Data.CodeVerifier, req.Challenge):
			mismatch = oidc.ErrInvalidGrant().WithDescription("code_verifier does not match the code_challenge")
		default:
			return nil
		}
		return ErrBadCode
	})
	switch {
	case mismatch != nil:
		if aerr := s.refused(ctx, "code-exchange-refused", r.Client.GetID()); aerr != nil {
			return nil, oidc.ErrServerError().WithParent(aerr)
		}
		return nil, mismatch
	case errors.Is(err, ErrBadCode):
		return nil, oidc.ErrInvalidGrant().WithDescription("the code is unknown, expired or used")
	case errors.Is(err, ErrBadRefresh):
		return nil, oidc.ErrInvalidGrant().WithDescription("the app's access has ended")
	case err != nil:
		return nil, oidc.ErrServerError().WithParent(err)
	}
	var idToken string
	if slices.ContainsFunc(t.Scopes, func(sc Scope) bool { return sc.Plain == ScopeOpenID }) {
		idToken, err = op.CreateIDToken(ctx, strings.TrimSuffix(s.o.Issuer, "/"), &idTokenRequest{authRequest: &authRequest{req}, grant: t.Grant, scopes: t.Scopes},
			IDTokenTTL, t.Access, r.Data.Code, s.storage, r.Client)
		if err != nil {
			return nil, oidc.ErrServerError().WithParent(err)
		}
	}
	return s.respond(t, idToken), nil
}

// RefreshToken rotates a refresh token (Flow.Refresh). No new ID token
// is minted (OIDC Core 12.2 allows it), which keeps signing off this
// path.
func (s *Server) RefreshToken(ctx context.Context, r *op.ClientRequest[oidc.RefreshTokenRequest]) (*op.Response, error) {
	var scopes []Scope
	if len(r.Data.Scopes) > 0 {
		var err error
		if scopes, err = ParseScopes(strings.Join(r.Data.Scopes, " ")); err != nil {
			return nil, oidc.ErrInvalidScope().WithDescription("%s", err.Error())
		}
	}
	t, err := s.o.Flow.Refresh(ctx, r.Client.GetID(), r.Data.RefreshToken, scopes)
	if err != nil {
		if strings.Contains(err.Error(), "invalid_scope") {
			return nil, oidc.ErrInvalidScope().WithDescription("%s", apperr.MessageOf(err))
		}
		return nil, oidc.ErrInvalidGrant().WithDescription("the refresh token is unknown, expired or revoked")
	}
	return s.respond(t, ""), nil
}

// Revocation ends a token the app holds (RFC 7009); an unknown token is
// answered as a revoked one.
func (s *Server) Revocation(ctx context.Context, r *op.ClientRequest[oidc.RevocationRequest]) (*op.Response, error) {
	if err := s.o.Flow.RevokeToken(ctx, r.Client.GetID(), r.Data.Token); err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	return op.NewResponse(struct{}{}), nil
}

// UserInfo names the person the token acts for: their subject and, with
// fhirUser, their FHIR resource.
func (s *Server) UserInfo(ctx context.Context, r *op.Request[oidc.UserInfoRequest]) (*op.Response, error) {
	info, err := s.o.Flow.Lookup(ctx, r.Data.AccessToken)
	if err != nil || !slices.ContainsFunc(info.Scopes, func(sc Scope) bool { return sc.Plain == ScopeOpenID }) {
		return nil, op.NewStatusError(&oidc.Error{ErrorType: "invalid_token", Description: "the access token is not active, or was not granted openid"}, http.StatusUnauthorized)
	}
	out := map[string]any{"sub": info.Grant.Account}
	if slices.ContainsFunc(info.Scopes, func(sc Scope) bool { return sc.Plain == ScopeFHIRUser }) {
		out["fhirUser"] = s.fhirUser(info.Grant)
	}
	return op.NewResponse(out), nil
}

// fhirUser is the FHIR resource of the person who granted the app:
// the Patient for a patient, their RelatedPerson for a caregiver.
func (s *Server) fhirUser(g *Grant) string { return s.FHIRBase() + "/" + g.FHIRUser }

// Unsupported grants and flows: refused as such.
func (s *Server) JWTProfile(context.Context, *op.Request[oidc.JWTProfileGrantRequest]) (*op.Response, error) {
	return nil, oidc.ErrUnsupportedGrantType()
}

// ClientCredentialsExchange is refused: apps act for a person.
func (s *Server) ClientCredentialsExchange(context.Context, *op.ClientRequest[oidc.ClientCredentialsRequest]) (*op.Response, error) {
	return nil, oidc.ErrUnsupportedGrantType()
}

// TokenExchange is refused.
func (s *Server) TokenExchange(context.Context, *op.ClientRequest[oidc.TokenExchangeRequest]) (*op.Response, error) {
	return nil, oidc.ErrUnsupportedGrantType()
}

// DeviceToken is refused.
func (s *Server) DeviceToken(context.Context, *op.ClientRequest[oidc.DeviceAccessTokenRequest]) (*op.Response, error) {
	return nil, oidc.ErrUnsupportedGrantType()
}

// introspect answers RFC 7662 for a registered confidential app, or for
// anyone presenting the token itself as Bearer (so a public app can
// check its own token). An inactive token is {"active": false}.
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "the form cannot be read")
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "token missing")
		return
	}
	var caller string
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		if subtle.ConstantTimeCompare([]byte(bearer), []byte(token)) != 1 {
			writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "a Bearer caller may introspect only its own token")
			return
		}
	} else {
		id, secret, _ := r.BasicAuth()
		if id == "" {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		var c *Client
		var err error
		if at := r.PostForm.Get("client_assertion"); at != "" {
			c, err = s.verifyAssertion(r.Context(), r.PostForm.Get("client_assertion_type"), at, id)
		} else if c, err = s.o.Clients.Get(r.Context(), id); err == nil && (!c.Active() || !c.CheckSecret(secret)) {
			err = errors.New("wrong client secret")
		}
		if err != nil {
			writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "introspection needs a confidential app's credentials or the token as Bearer")
			return
		}
		caller = c.ID
	}
	info, err := s.o.Flow.Lookup(r.Context(), token)
	w.Header().Set("Content-Type", "application/json")
	if err != nil || (caller != "" && caller != info.Grant.ClientID) {
		json.NewEncoder(w).Encode(map[string]any{"active": false})
		return
	}
	out := map[string]any{"active": true, "scope": Format(info.Scopes), "client_id": info.Grant.ClientID, "exp": info.Expires.Unix(),
		"sub": info.Grant.Account, "iss": strings.TrimSuffix(s.o.Issuer, "/"), "token_type": "Bearer"}
	if slices.ContainsFunc(info.Scopes, func(sc Scope) bool { return sc.Resource() && sc.Context == "patient" || sc.Plain == ScopeLaunchPatient }) {
		out["patient"] = info.Grant.Patient
	}
	if slices.ContainsFunc(info.Scopes, func(sc Scope) bool { return sc.Plain == ScopeFHIRUser }) {
		out["fhirUser"] = s.fhirUser(info.Grant)
	}
	json.NewEncoder(w).Encode(out)
}

func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="carefront"`)
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}
