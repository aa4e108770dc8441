package oauth

import (
	"context"
	"net/url"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"carefront/internal/apperr"
)

// PathLogout is OpenID Connect RP-initiated logout: an app sends the
// person here to sign out of carefront too. The portal serves it (the
// session is the portal's); this file decides where they may go after.
const PathLogout = "/oauth/logout"

// Logout is a validated RP-initiated logout request.
type Logout struct {
	// ClientID is the app asking, from id_token_hint or client_id.
	ClientID string
	// Subject is the account id_token_hint names ("" without a hint).
	Subject string
	// Redirect is where to send the person afterwards, state added: a
	// post_logout_redirect_uri the app registered as a redirect URI
	// (exactly), of an app the clinic reviewed; or "" to stay on
	// carefront.
	Redirect string
}

// ParseLogout checks an RP-initiated logout request. id_token_hint must
// be an ID token carefront signed (it may have expired); without one,
// client_id names the app. A post_logout_redirect_uri is followed only
// when it is exactly one of that app's registered redirect URIs; any
// other is Invalid (an error page, never a redirect).
func (s *Server) ParseLogout(ctx context.Context, form url.Values) (*Logout, error) {
	out := &Logout{ClientID: form.Get("client_id")}
	if hint := form.Get("id_token_hint"); hint != "" {
		sub, aud, err := s.verifyHint(ctx, hint)
		if err != nil {
			return nil, err
		}
		if out.ClientID != "" && out.ClientID != aud {
			return nil, apperr.New(apperr.Invalid, "client_id does not match the id_token_hint")
		}
		out.ClientID, out.Subject = aud, sub
	}
	to := form.Get("post_logout_redirect_uri")
	if to == "" {
		return out, nil
	}
	if out.ClientID == "" {
		return nil, apperr.New(apperr.Invalid, "post_logout_redirect_uri needs id_token_hint or client_id")
	}
	c, err := s.o.Clients.Get(ctx, out.ClientID)
	if err != nil || !c.Active() || !c.RedirectAllowed(to) {
		return nil, apperr.New(apperr.Invalid, "post_logout_redirect_uri is not one the app registered")
	}
	if !c.Reviewed {
		// An app that registered itself could name any site: carefront
		// would lend it its address. The person stays on carefront.
		return out, nil
	}
	if st := form.Get("state"); st != "" {
		sep := "?"
		if strings.Contains(to, "?") {
			sep = "&"
		}
		to += sep + url.Values{"state": {st}}.Encode()
	}
	out.Redirect = to
	return out, nil
}

// verifyHint checks an ID token carefront signed with a key it still
// publishes, for its issuer; expiry is not checked (a hint may be old).
func (s *Server) verifyHint(ctx context.Context, hint string) (sub, aud string, err error) {
	bad := apperr.New(apperr.Invalid, "id_token_hint is not an ID token carefront issued")
	tok, err := jwt.ParseSigned(hint, []jose.SignatureAlgorithm{SigningAlg})
	if err != nil || len(tok.Headers) != 1 {
		return "", "", bad
	}
	keys, err := s.o.Keys.Published(ctx)
	if err != nil {
		return "", "", err
	}
	i := slices.IndexFunc(keys, func(k *SigningKey) bool { return k.ID == tok.Headers[0].KeyID })
	if i < 0 {
		return "", "", bad
	}
	var c jwt.Claims
	if err := tok.Claims(&keys[i].Private.PublicKey, &c); err != nil || c.Issuer != strings.TrimSuffix(s.o.Issuer, "/") || len(c.Audience) == 0 {
		return "", "", bad
	}
	return c.Subject, c.Audience[0], nil
}
