package oauth

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"

	"carefront/internal/apperr"
	"carefront/internal/telemetry"
)

// PathRegister is dynamic client registration (RFC 7591), served only
// when the clinic turns it on (--dynamic-client-registration). An app
// registered this way is shown to patients as not reviewed by their
// clinic, and cannot be opened from the portal.
const PathRegister = "/oauth/register"

// registration is the RFC 7591 client metadata carefront reads.
type registration struct {
	ClientName              string          `json:"client_name"`
	RedirectURIs            []string        `json:"redirect_uris"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	GrantTypes              []string        `json:"grant_types"`
	ResponseTypes           []string        `json:"response_types"`
	JWKS                    json.RawMessage `json:"jwks"`
	JWKSURI                 string          `json:"jwks_uri"`
}

// Register answers a dynamic client registration: 201 with the client's
// metadata and id (and a secret, once, for client_secret_basic), or 400
// with RFC 7591's invalid_redirect_uri or invalid_client_metadata.
func (s *Server) Register(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	var m registration
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil || json.Unmarshal(body, &m) != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "send the client metadata as a JSON object")
		return
	}
	n := NewClient{Name: m.ClientName, RedirectURIs: m.RedirectURIs, By: "dynamic-registration", Address: telemetry.ClientAddr(r.Context())}
	switch m.TokenEndpointAuthMethod {
	case "none":
		n.Kind = KindPublic
	case "", "client_secret_basic", "client_secret_post":
		n.Kind = KindSecret
	case "private_key_jwt":
		n.Kind, n.JWKS, n.JWKSURL = KindJWKS, m.JWKS, m.JWKSURI
	default:
		writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "token_endpoint_auth_method must be none, client_secret_basic, client_secret_post or private_key_jwt")
		return
	}
	for _, g := range m.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "grant_types may be authorization_code and refresh_token only")
			return
		}
	}
	if len(m.ResponseTypes) > 0 && !slices.Equal(m.ResponseTypes, []string{"code"}) {
		writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "response_types may be code only")
		return
	}
	if len(m.RedirectURIs) == 0 {
		writeOAuthError(w, http.StatusBadRequest, "invalid_redirect_uri", "give at least one redirect URI")
		return
	}
	c, secret, err := s.o.Clients.Add(r.Context(), n)
	if apperr.CodeOf(err) == apperr.Invalid {
		code := "invalid_client_metadata"
		if _, perr := s.o.Clients.check(NewClient{Name: "x", Kind: KindPublic, RedirectURIs: m.RedirectURIs}); perr != nil {
			code = "invalid_redirect_uri"
		}
		writeOAuthError(w, http.StatusBadRequest, code, apperr.MessageOf(err))
		return
	}
	if err != nil {
		writeOAuthError(w, http.StatusInternalServerError, "server_error", "the registration could not be kept; try again")
		return
	}
	method := m.TokenEndpointAuthMethod
	if method == "" {
		method = "client_secret_basic"
	}
	out := map[string]any{"client_id": c.ID, "client_id_issued_at": c.Created.Unix(), "client_name": c.Name, "redirect_uris": c.RedirectURIs,
		"token_endpoint_auth_method": method, "grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"}}
	if secret != "" {
		out["client_secret"], out["client_secret_expires_at"] = secret, 0
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(out)
}
