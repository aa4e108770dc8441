package web

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"carefront/internal/locale"
	"carefront/internal/telemetry"
)

type testServer struct {
	*Server
	logs    *bytes.Buffer
	metrics *telemetry.Metrics
}

func newTestServer(t *testing.T, mod func(*Options)) testServer {
	t.Helper()
	cat, err := locale.Load()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	o := Options{
		Logger: telemetry.NewLogger(&logs, slog.LevelDebug), Metrics: telemetry.NewMetrics(),
		Catalog: cat, MaxBodyBytes: 1024, Version: "test",
	}
	if mod != nil {
		mod(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return testServer{s, &logs, o.Metrics}
}

func get(t *testing.T, h http.Handler, target string, hdr ...string) *http.Response {
	t.Helper()
	r := httptest.NewRequest("GET", target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var nonceInCSP = regexp.MustCompile(`script-src 'self' 'nonce-([A-Za-z0-9_-]+)'`)

func TestHomeCarriesSecurityHeaders(t *testing.T) {
	s := newTestServer(t, nil)
	res := get(t, s, "/")
	if res.StatusCode != 200 {
		t.Fatalf("GET / = %d", res.StatusCode)
	}
	want := map[string]string{
		"X-Content-Type-Options":       "nosniff",
		"Referrer-Policy":              "no-referrer",
		"X-Frame-Options":              "DENY",
		"Cross-Origin-Opener-Policy":   "same-origin",
		"Cross-Origin-Resource-Policy": "same-origin",
		"Cache-Control":                "no-store",
		"Content-Type":                 "text/html; charset=utf-8",
	}
	for k, v := range want {
		if got := res.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	csp := res.Header.Get("Content-Security-Policy")
	for _, part := range []string{"default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'", "object-src 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, part) {
			t.Errorf("CSP %q lacks %q", csp, part)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP %q allows unsafe code", csp)
	}
	pp := res.Header.Get("Permissions-Policy")
	for _, f := range []string{"camera=()", "microphone=()", "geolocation=()"} {
		if !strings.Contains(pp, f) {
			t.Errorf("Permissions-Policy %q lacks %s", pp, f)
		}
	}
	if res.Header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS sent over plain HTTP")
	}

	// Every script tag carries this response's nonce; there is no inline
	// script or style to need unsafe-inline.
	m := nonceInCSP.FindStringSubmatch(csp)
	if m == nil {
		t.Fatalf("no nonce in CSP %q", csp)
	}
	html := body(t, res)
	scripts := regexp.MustCompile(`<script[^>]*>`).FindAllString(html, -1)
	if len(scripts) == 0 {
		t.Fatal("no script tags on the home page")
	}
	for _, tag := range scripts {
		if !strings.Contains(tag, `nonce="`+m[1]+`"`) || !strings.Contains(tag, `src="/static/`) {
			t.Errorf("script tag %s lacks this response's nonce or a static src", tag)
		}
	}
	for _, bad := range []string{"<style", " style=", " onclick=", " onload=", "javascript:"} {
		if strings.Contains(html, bad) {
			t.Errorf("home page contains %q", bad)
		}
	}
	for _, want := range []string{`<html lang="en">`, `href="#main-content"`, `<main id="main-content"`, `href="/signin"`, "<footer", "<header"} {
		if !strings.Contains(html, want) {
			t.Errorf("home page lacks %q", want)
		}
	}

	other := get(t, s, "/").Header.Get("Content-Security-Policy")
	if other == csp {
		t.Error("two responses share one CSP nonce")
	}
}

func TestDemoBanner(t *testing.T) {
	if html := body(t, get(t, newTestServer(t, nil), "/")); strings.Contains(html, "usa-site-alert") {
		t.Error("banner shown outside demo mode")
	}
	s := newTestServer(t, func(o *Options) { o.Demo = true })
	for lang, want := range map[string]string{"en": "Do not enter real patient information", "es": "No escriba información de pacientes reales"} {
		for _, target := range []string{"/", "/missing"} {
			if html := body(t, get(t, s, target+"?lang="+lang)); !strings.Contains(html, want) {
				t.Errorf("demo %s in %s lacks the banner", target, lang)
			}
		}
	}
}

func TestHSTSWhenServedOverTLS(t *testing.T) {
	s := newTestServer(t, func(o *Options) { o.TLS = true })
	if got := get(t, s, "/").Header.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=63072000") {
		t.Errorf("HSTS = %q, want two years", got)
	}
}

func TestRequestID(t *testing.T) {
	s := newTestServer(t, nil)
	tests := []struct {
		name, in string
		keep     bool
	}{
		{"uuid is kept", "3f2b8c1e-9a4d-4e7b-8c2a-1d5e6f7a8b9c", true},
		{"hex is kept", "7f3a9c0d1e2b4a5f", true},
		{"64 hex is kept", strings.Repeat("ab", 32), true},
		{"free text replaced", "Smith-Adolph-1944-11-28", false},
		{"short hex replaced", "7f3a9c0d", false},
		{"65 hex replaced", strings.Repeat("a", 65), false},
		{"dotted replaced", "lb-7f3a.2", false},
		{"absent is made", "", false},
		{"header injection replaced", "abc\r\nSet-Cookie: x=1", false},
		{"html replaced", "<script>alert(1)</script>", false},
		{"too long replaced", strings.Repeat("a", 65), false},
		{"spaces replaced", "a b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/nope", nil)
			if tt.in != "" {
				r.Header["X-Request-Id"] = []string{tt.in}
			}
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			got := w.Result().Header.Get("X-Request-Id")
			if tt.keep && got != tt.in {
				t.Errorf("X-Request-Id = %q, want %q kept", got, tt.in)
			}
			if !tt.keep && (got == tt.in || !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(got)) {
				t.Errorf("X-Request-Id = %q, want a fresh id replacing %q", got, tt.in)
			}
			if tt.in != "" && !tt.keep && strings.Contains(w.Body.String(), tt.in) {
				t.Errorf("page echoes the malformed id %q", tt.in)
			}
			if !strings.Contains(w.Body.String(), got) {
				t.Errorf("error page does not show the reference %q", got)
			}
		})
	}
}

func TestNotFoundPage(t *testing.T) {
	s := newTestServer(t, nil)
	res := get(t, s, "/no/such/page")
	html := body(t, res)
	if res.StatusCode != 404 || !strings.Contains(html, "Page not found") || !strings.Contains(html, `href="#main-content"`) {
		t.Errorf("GET /no/such/page = %d, want the 404 page in the layout; body:\n%s", res.StatusCode, html)
	}
	res = get(t, s, "/no/such/page", "Accept-Language", "es")
	if html := body(t, res); !strings.Contains(html, "No encontramos la página") {
		t.Errorf("Spanish 404 page lacks its title")
	}
	res = get(t, s, "/no/such/page", "Accept", "application/json")
	if got := body(t, res); res.Header.Get("Content-Type") != "application/json" || !strings.Contains(got, `"error":"not_found"`) {
		t.Errorf("JSON 404 = %s %s", res.Header.Get("Content-Type"), got)
	}
}

func TestBodyOverLimitIs413(t *testing.T) {
	s := newTestServer(t, nil)
	// A declared length over the limit is refused before routing.
	r := httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("x", 2048)))
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), "too large") {
		t.Errorf("POST 2 KiB = %d, want 413 page", w.Code)
	}

	// A body of unknown length is cut off when a handler reads past it,
	// and the handler's error renders as 413 too.
	var read int
	h := s.middleware(s.handle(func(w http.ResponseWriter, r *http.Request) error {
		b, err := io.ReadAll(r.Body)
		read = len(b)
		return err
	}))
	r = httptest.NewRequest("POST", "/upload", io.MultiReader(strings.NewReader(strings.Repeat("y", 4096))))
	r.ContentLength = -1
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge || read > 1024 {
		t.Errorf("chunked 4 KiB = %d after reading %d bytes, want 413 after at most 1024", w.Code, read)
	}
}

func TestPanicGivesPlainErrorPage(t *testing.T) {
	s := newTestServer(t, nil)
	h := s.middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic(errors.New("patient Jane Doe has no MRN"))
	}))
	r := httptest.NewRequest("GET", "/boom", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 500 {
		t.Fatalf("panic = %d, want 500", w.Code)
	}
	for _, leak := range []string{"Jane", "goroutine", ".go:"} {
		if strings.Contains(w.Body.String(), leak) {
			t.Errorf("error page shows %q", leak)
		}
		if leak == "Jane" && strings.Contains(s.logs.String(), leak) {
			t.Errorf("log carries the panic value %q", leak)
		}
	}
	if !strings.Contains(s.logs.String(), `"msg":"panic"`) || !strings.Contains(s.logs.String(), `"request_id"`) {
		t.Errorf("panic not logged with its request id:\n%s", s.logs)
	}
}

func TestLogsAndMetricsNeverCarryRawPath(t *testing.T) {
	s := newTestServer(t, nil)
	get(t, s, "/patients/Jane-Doe-1970?ssn=123-45-6789", "X-Forwarded-For", "198.51.100.23")
	get(t, s, "/")
	logs := s.logs.String()
	for _, leak := range []string{"Jane", "ssn", "123-45", "198.51.100.23", "/patients"} {
		if strings.Contains(logs, leak) {
			t.Errorf("log carries %q:\n%s", leak, logs)
		}
	}
	if !strings.Contains(logs, `"route":"/"`) || !strings.Contains(logs, `"route":"GET /{$}"`) {
		t.Errorf("log lacks route patterns:\n%s", logs)
	}
	var out bytes.Buffer
	rec := httptest.NewRecorder()
	s.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out.Write(rec.Body.Bytes())
	if strings.Contains(out.String(), "Jane") || !strings.Contains(out.String(), `route="GET /{$}"`) {
		t.Errorf("metrics labels wrong:\n%s", grep(out.String(), "carefront_http_requests_total"))
	}
}

func grep(s, sub string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func TestLanguageChoice(t *testing.T) {
	s := newTestServer(t, nil)
	tests := []struct {
		name     string
		target   string
		hdr      []string
		wantLang string
		wantText string
	}{
		{"default English", "/", nil, "en", "Your health information, when you need it"},
		{"Accept-Language Spanish", "/", []string{"Accept-Language", "es-MX,es;q=0.9,en;q=0.5"}, "es", "Su información de salud"},
		{"unsupported falls back", "/", []string{"Accept-Language", "fr-FR"}, "en", "Your health information"},
		{"explicit choice wins", "/?lang=es", []string{"Accept-Language", "en"}, "es", "Su información de salud"},
		{"cookie remembered", "/", []string{"Cookie", "lang=es"}, "es", "Su información de salud"},
		{"bad choice ignored", "/?lang=xx", nil, "en", "Your health information"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := get(t, s, tt.target, tt.hdr...)
			html := body(t, res)
			if !strings.Contains(html, `<html lang="`+tt.wantLang+`">`) || !strings.Contains(html, tt.wantText) {
				t.Errorf("GET %s: want lang %s and %q", tt.target, tt.wantLang, tt.wantText)
			}
		})
	}
	res := get(t, s, "/?lang=es")
	var c *http.Cookie
	for _, k := range res.Cookies() {
		if k.Name == "lang" {
			c = k
		}
	}
	if c == nil || c.Value != "es" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
		t.Errorf("lang cookie = %+v", c)
	}
	if html := body(t, res); !strings.Contains(html, `hreflang="en"`) {
		t.Error("Spanish page does not link to English")
	}
}

var tKey = regexp.MustCompile(`\.T "([a-z0-9.]+)"`)

func TestEveryUIStringIsTranslated(t *testing.T) {
	cat, err := locale.Load()
	if err != nil {
		t.Fatal(err)
	}
	en, es := cat.IDs(locale.Supported[0]), cat.IDs(locale.Supported[1])
	if strings.Join(en, ",") != strings.Join(es, ",") {
		t.Errorf("catalogues differ:\n en: %v\n es: %v", en, es)
	}
	have := map[string]bool{}
	for _, id := range en {
		have[id] = true
	}
	for name := range mustTemplates(t) {
		raw, err := templateFS.ReadFile("templates/" + name + ".html")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range tKey.FindAllStringSubmatch(string(raw), -1) {
			if !have[m[1]] {
				t.Errorf("template %s uses %q, missing from the catalogues", name, m[1])
			}
		}
	}
	// Spanish text must differ from English, save names and the words
	// both languages write alike.
	same := map[string]bool{"site.name": true, "checkin.no": true, "survey.again.no": true, "survey.needs-met.no": true, "video.host.waiting.item": true}
	enT, esT := cat.Translator(locale.Supported[0]), cat.Translator(locale.Supported[1])
	for _, id := range en {
		if !same[id] && enT.T(id) == esT.T(id) {
			t.Errorf("%s is the same in English and Spanish: %q", id, enT.T(id))
		}
	}
	// Page bodies in every language render with no untranslated ids.
	s := newTestServer(t, nil)
	for _, lang := range []string{"en", "es"} {
		for _, target := range []string{"/", "/missing"} {
			html := body(t, get(t, s, target+"?lang="+lang))
			if m := regexp.MustCompile(`>\s*((home|error|layout|site)\.[a-z0-9.]+)\s*<`).FindString(html); m != "" {
				t.Errorf("%s in %s shows an untranslated id %s", target, lang, m)
			}
		}
	}
}

func mustTemplates(t *testing.T) map[string]bool {
	entries, err := templateFS.ReadDir("templates")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range entries {
		out[strings.TrimSuffix(e.Name(), ".html")] = true
	}
	return out
}

func TestStaticFiles(t *testing.T) {
	s := newTestServer(t, nil)
	url := s.static.url("uswds/css/uswds.min.css")
	res := get(t, s, url)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/css; charset=utf-8" ||
		res.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Errorf("GET %s = %d %q %q", url, res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Cache-Control"))
	}
	font := s.static.url("uswds/fonts/source-sans-pro/sourcesanspro-regular-webfont.woff2")
	if res := get(t, s, font); res.StatusCode != 200 || res.Header.Get("Content-Type") != "font/woff2" {
		t.Errorf("GET font = %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if res := get(t, s, "/static/0000000000000000/app.css"); res.StatusCode != 200 || res.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("other version = %d %q, want 200 no-cache", res.StatusCode, res.Header.Get("Cache-Control"))
	}
	for _, bad := range []string{
		"/static/" + s.static.version + "/uswds/css",
		"/static/" + s.static.version + "/uswds/..%2f..%2frender.go",
		"/static/" + s.static.version + "/..%2fapp.css",
		"/static/" + s.static.version + "/nope.css",
		"/static/" + s.static.version + "/uswds/VERSION",
	} {
		if res := get(t, s, bad); res.StatusCode != 404 {
			t.Errorf("GET %s = %d, want 404", bad, res.StatusCode)
		}
	}
	html := body(t, get(t, s, "/"))
	for _, m := range regexp.MustCompile(`(?:href|src)="(/static/[^"]+)"`).FindAllStringSubmatch(html, -1) {
		if res := get(t, s, m[1]); res.StatusCode != 200 {
			t.Errorf("home page links %s, which answers %d", m[1], res.StatusCode)
		}
	}
}

func TestReadiness(t *testing.T) {
	var ready error
	s := newTestServer(t, func(o *Options) { o.Ready = func(context.Context) error { return ready } })
	if res := get(t, s, "/readyz"); res.StatusCode != 200 {
		t.Errorf("/readyz = %d, want 200", res.StatusCode)
	}
	ready = errors.New("migrations pending at postgres://secret@db")
	res := get(t, s, "/readyz")
	if b := body(t, res); res.StatusCode != 503 || strings.Contains(b, "secret") {
		t.Errorf("/readyz = %d %s, want 503 without the cause", res.StatusCode, b)
	}
	if res := get(t, s, "/healthz"); res.StatusCode != 200 {
		t.Errorf("/healthz = %d", res.StatusCode)
	}
}
