package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestEveryLogLineCarriesTheRequestID(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, slog.LevelInfo).With("component", "test")
	ctx := WithRequestID(context.Background(), "req-42")
	log.InfoContext(ctx, "hello")
	log.DebugContext(ctx, "hidden below the level")
	log.Info("no request")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines: %q", lines)
	}
	var first, second map[string]any
	json.Unmarshal([]byte(lines[0]), &first)
	json.Unmarshal([]byte(lines[1]), &second)
	if first["request_id"] != "req-42" || first["component"] != "test" {
		t.Errorf("first line: %v", first)
	}
	if _, ok := second["request_id"]; ok {
		t.Errorf("a line without a request got one: %v", second)
	}
	if RequestID(ctx) != "req-42" || RequestID(context.Background()) != "" {
		t.Error("RequestID round trip")
	}
}

func TestMetricsAreLabelledByRoutePattern(t *testing.T) {
	m := NewMetrics()
	m.ObserveHTTP("GET /patients/{id}", "GET", 200, 3*time.Millisecond)
	m.ObserveAudit(8, time.Millisecond, nil)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if !strings.Contains(string(body), `route="GET /patients/{id}"`) {
		t.Errorf("no route-pattern label in:\n%.2000s", body)
	}
}
