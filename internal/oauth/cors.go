package oauth

import (
	"net/http"

	"github.com/go-jose/go-jose/v4/jwt"
)

// CORS lets the browser apps registered at a request's origin call next
// (discovery, the token endpoint, the FHIR API): bearer tokens and form
// posts only, never cookies, so credentials are never allowed. Other
// origins get no CORS headers, and their preflight is refused. methods
// are those a preflight may ask for ("GET", "GET, POST").
func (s *Clients) CORS(methods string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || s == nil {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		ok, err := s.OriginRegistered(r.Context(), origin)
		if err != nil {
			http.Error(w, "the request cannot be checked", http.StatusServiceUnavailable)
			return
		}
		if ok {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Expose-Headers", "WWW-Authenticate, Location")
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if !ok {
				w.WriteHeader(http.StatusForbidden)
				return
			}
			w.Header().Set("Access-Control-Allow-Methods", methods)
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Accept, Content-Type, Prefer")
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// AssertionIssuer is the client id a client assertion claims (its iss),
// unverified: for keying rate limits before the token endpoint checks
// it; "" when it is not a JWT.
func AssertionIssuer(assertion string) string {
	tok, err := jwt.ParseSigned(assertion, AssertionAlgs)
	if err != nil {
		return ""
	}
	var c jwt.Claims
	if tok.UnsafeClaimsWithoutVerification(&c) != nil {
		return ""
	}
	return c.Issuer
}
