// Package telemetry provides carefront's structured logs and Prometheus
// metrics, and carries the request id through a context.
//
// It must never carry PHI: log lines hold ids, codes, route patterns and
// timings; metric labels hold route patterns, methods and status codes, never
// raw paths, query strings, IP addresses or anything a patient typed.
package telemetry

import (
	"context"
	"io"
	"log/slog"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	clientAddrKey
)

// WithRequestID returns ctx carrying the request id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// WithClientAddr records the address of the client that made the
// request (the web layer works it out, believing only trusted proxies).
func WithClientAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientAddrKey, addr)
}

// ClientAddr is the request's client address, "" when none was recorded.
func ClientAddr(ctx context.Context) string {
	a, _ := ctx.Value(clientAddrKey).(string)
	return a
}

// RequestID reports the request id in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// NewLogger returns a JSON logger that adds the request id of the context
// passed to its *Context methods to every line.
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(requestIDHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})})
}

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
