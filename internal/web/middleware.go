package web

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/messaging"
	"carefront/internal/telemetry"
)

type ctxKey int

const (
	nonceKey ctxKey = iota
	infoKey
)

// requestInfo is filled in as the request passes inward, and read by the
// outer middleware when the response is done.
type requestInfo struct {
	route string // the mux pattern that matched, never the raw path
}

// validRequestID admits the ids a load balancer or client sends in
// practice: a UUID, or 16 to 64 hex digits. Anything else is replaced,
// never echoed or logged: free text there ("Smith-Adolph-1944-11-28") could
// carry PHI into logs and audit records, or inject into headers.
var validRequestID = regexp.MustCompile(`^(?:[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|[0-9A-Fa-f]{16,64})$`)

func (s *Server) middleware(h http.Handler) http.Handler {
	return s.observe(s.securityHeaders(s.limitBody(h)))
}

// recordRoute tells observe which mux pattern served the request. It sits
// right around the mux: the mux sets Pattern on the request it is given,
// and middleware between here and observe (the session lookup) passes
// copies of the request inward, so observe's own copy never sees it.
func recordRoute(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if info, ok := r.Context().Value(infoKey).(*requestInfo); ok && r.Pattern != "" {
				info.route = r.Pattern
			}
		}()
		mux.ServeHTTP(w, r)
	})
}

// observe assigns the request id, recovers panics, and logs and counts
// every request by route pattern.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID.MatchString(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		info := &requestInfo{}
		r = s.withClientAddr(r)
		ctx := telemetry.WithRequestID(r.Context(), id)
		ctx = context.WithValue(ctx, infoKey, info)
		r = r.WithContext(ctx)
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				// The panic value may hold request data: log its type only.
				s.log.ErrorContext(ctx, "panic", "type", fmt.Sprintf("%T", p), "stack", string(debug.Stack()))
				if !rec.wroteHeader {
					s.renderError(rec, r, apperr.New(apperr.Internal, "panic"))
				}
			}
			route := info.route
			if route == "" {
				route = "unmatched"
			}
			took := time.Since(start)
			level := slog.LevelInfo
			if rec.status >= 500 {
				level = slog.LevelError
			}
			s.log.LogAttrs(ctx, level, "request",
				slog.String("method", r.Method), slog.String("route", route),
				slog.Int("status", rec.status), slog.Int64("bytes", rec.bytes),
				slog.Float64("ms", float64(took.Microseconds())/1000))
			if s.opts.Metrics != nil {
				s.opts.Metrics.ObserveHTTP(route, r.Method, rec.status, took)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// securityHeaders sets the headers every response carries, with a fresh CSP
// nonce that templates put on their script tags.
func (s *Server) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [18]byte
		rand.Read(b[:])
		nonce := base64.RawURLEncoding.EncodeToString(b[:])
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self' 'nonce-"+nonce+"'; "+
			"style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; manifest-src 'self'; "+
			"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Permissions-Policy", "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		// Pages may carry PHI: nothing is cached unless a handler says so.
		h.Set("Cache-Control", "no-store")
		if s.opts.TLS || r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), nonceKey, nonce)))
	})
}

// limitBody answers 413 for a declared length over the limit and caps the
// body of every other request, so a handler reading too much gets an error
// that renders as 413 too.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := s.bodyLimit(r)
		if r.ContentLength > limit {
			s.renderError(w, r, apperr.New(apperr.TooLarge, "The request is too large."))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}

// uploadLimit is the body limit of the forms that carry a file with a
// message: the file's own limit and room for the rest of the form.
const uploadLimit = messaging.MaxAttachment + 256<<10

// bodyLimit is the request's body limit: the global one, or, for a
// message that may carry a file, at least uploadLimit.
func (s *Server) bodyLimit(r *http.Request) int64 {
	if r.Method == http.MethodPost && (strings.HasPrefix(r.URL.Path, "/messages/") || strings.HasPrefix(r.URL.Path, "/staff/inbox/")) {
		return max(s.opts.MaxBodyBytes, uploadLimit)
	}
	return s.opts.MaxBodyBytes
}

func nonceFrom(ctx context.Context) string {
	n, _ := ctx.Value(nonceKey).(string)
	return n
}

// statusRecorder remembers the status and size of a response.
type statusRecorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if !r.wroteHeader {
		r.WriteHeader(http.StatusOK)
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
