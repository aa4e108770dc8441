package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/identity"
	"carefront/internal/locale"
	"carefront/internal/questionnaire"
	"carefront/internal/telemetry"
	"carefront/internal/views"
)

//go:embed templates/*.html
var templateFS embed.FS

// templates holds one parsed template set per page, each the layout plus
// the page's own blocks.
type templates struct {
	pages map[string]*template.Template
}

// funcs are the few helpers templates may call; translation is a method of
// the page (T), not a function, so it always uses the request's language.
var funcs = template.FuncMap{
	"list": func(xs ...string) []string { return xs },
	"args": func(xs ...any) []any { return xs },
	// deref shows a bound that may be missing ("" when it is).
	"deref": func(f *float64) string {
		if f == nil {
			return ""
		}
		return strconv.FormatFloat(*f, 'f', -1, 64)
	},
	"keyPath": views.KeyPath,
	// when is a check-in question's enableWhen for checkin.js, as JSON:
	// {"any": enableBehavior any, "c": [{"q", "op", "v", "t"}]}.
	"when": func(it *questionnaire.Item) (string, error) {
		b, err := json.Marshal(struct {
			Any bool                       `json:"any"`
			C   []questionnaire.EnableWhen `json:"c"`
		}{it.EnableAny, it.EnableWhen})
		return string(b), err
	},
	// pair hands a sub-template the page and one item.
	"pair": func(a, b any) []any { return []any{a, b} },
	// minutes is the length of a span, in minutes.
	"minutes": func(from, to time.Time) int { return int(to.Sub(from).Minutes()) },
	"add":     func(a, b float64) float64 { return a + b },
	"sub":     func(a, b float64) float64 { return a - b },
	"join":    strings.Join,
	// messageText is a message as plain text with its web addresses linked.
	"messageText": messageText,
	// field bundles what the text-field template needs.
	"field": func(p page, name, label, typ, auto string) fieldArgs {
		return fieldArgs{Page: p, Name: name, Label: label, Type: typ, Auto: auto}
	},
	// safeURL admits the data: URLs the server makes itself (QR codes).
	"safeURL": func(v any) template.URL {
		s, _ := v.(string)
		if !strings.HasPrefix(s, "data:image/png;base64,") {
			return ""
		}
		return template.URL(s)
	},
}

type fieldArgs struct {
	Page                    page
	Name, Label, Type, Auto string
}

func parseTemplates() (*templates, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	t := &templates{pages: map[string]*template.Template{}}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		p, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", name, err)
		}
		t.pages[name] = p
	}
	return t, nil
}

// page is what every template receives. Translations come through the
// embedded Translator's T method: {{.T "home.title"}}.
type page struct {
	*locale.Translator
	Lang      string
	OtherLang string
	Nonce     string
	Path      string
	Version   string
	RequestID string
	Status    int
	Demo      bool
	SignedIn  bool
	// Staff says a staff member is signed in (no sharing of their own).
	Staff bool
	// IdleSeconds is the signed-in session's idle timeout, for the warning.
	IdleSeconds int
	// Nav is the record navigation, on pages of a person's record.
	Nav []navItem
	// Viewing is whose record the page shows, on record pages of a person
	// who holds caregiver access (the banner and the switcher); nil
	// otherwise.
	Viewing *viewing
	// Ended, when set, tells a caregiver their access to a record ended.
	Ended *endedNotice
	// TitleID is the catalogue id of the page's <title> and <h1>.
	TitleID string
	BodyID  string
	Data    any

	static *staticFiles
}

// R is a link to path within the record the page shows: for a caregiver
// it names the patient (for=ID), so each page, tab and form acts for
// exactly one person.
func (p page) R(path string) string {
	if p.Viewing == nil || p.Viewing.Self {
		return path
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + "for=" + url.QueryEscape(p.Viewing.For)
}

// Own reports whether the page shows the person's own record (they may
// change its settings); false for a caregiver's view.
func (p page) Own() bool { return p.Viewing == nil || p.Viewing.Self }

// Shares reports whether the page's record shows data of FHIR type typ
// to the person: always their own; a caregiver's grant may cover less.
func (p page) Shares(typ string) bool {
	return p.Viewing == nil || p.Viewing.Self || p.Viewing.proxy == nil || p.Viewing.proxy.Covers(typ)
}

// Static returns the content-hashed URL of a static file.
func (p page) Static(name string) string { return p.static.url(name) }

var monthsES = []string{"enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre"}

// Date writes a date as people of the page's language write it; "" for
// the zero time. Dates are shown in UTC, as the record gives them.
func (p page) Date(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	if p.Lang == "es" {
		return fmt.Sprintf("%d de %s de %d", t.Day(), monthsES[t.Month()-1], t.Year())
	}
	return t.Format("January 2, 2006")
}

// Category names a granular scope's category ("system|code") in the
// page's language: a US Core category it knows, else the code itself.
func (p page) Category(c string) string {
	if i := strings.LastIndexByte(c, '|'); i >= 0 {
		c = c[i+1:]
	}
	id := "apps.category." + c
	if s := p.T(id); s != id {
		return s
	}
	return c
}

// ShortDate is a compact date for tables and charts.
func (p page) ShortDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	if p.Lang == "es" {
		return t.Format("02/01/2006")
	}
	return t.Format("01/02/2006")
}

// Time writes a time of day in the page's language.
func (p page) Time(t time.Time) string {
	if p.Lang == "es" {
		return t.Format("15:04")
	}
	return t.Format("3:04 PM")
}

// ISO is a machine-readable date and time for <time datetime>.
func (p page) ISO(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// langCookie remembers the language a person picked.
const langCookie = "lang"

// translator picks the language: an explicit ?lang= (remembered in a
// cookie), then the cookie, then Accept-Language.
func (s *Server) translator(w http.ResponseWriter, r *http.Request) *locale.Translator {
	choice := r.URL.Query().Get("lang")
	if t, ok := locale.Parse(choice); ok {
		http.SetCookie(w, &http.Cookie{
			Name: langCookie, Value: t.String(), Path: "/", MaxAge: 365 * 24 * 3600,
			HttpOnly: true, Secure: s.opts.TLS || r.TLS != nil, SameSite: http.SameSiteLaxMode,
		})
	} else if c, err := r.Cookie(langCookie); err == nil {
		choice = c.Value
	}
	w.Header().Add("Vary", "Accept-Language, Cookie")
	return s.opts.Catalog.Translator(s.opts.Catalog.Pick(choice, r.Header.Get("Accept-Language")))
}

func (s *Server) newPage(w http.ResponseWriter, r *http.Request, titleID string) page {
	tr := s.translator(w, r)
	other := locale.Supported[0].String()
	if tr.Tag == locale.Supported[0] {
		other = locale.Supported[1].String()
	}
	p := page{
		Translator: tr, Lang: tr.Tag.String(), OtherLang: other,
		Nonce: nonceFrom(r.Context()), Path: r.URL.Path, Version: s.opts.Version,
		RequestID: telemetry.RequestID(r.Context()), Status: http.StatusOK, Demo: s.opts.Demo,
		TitleID: titleID, static: s.static,
	}
	if u := currentUser(r.Context()); u != nil {
		p.SignedIn, p.IdleSeconds = true, int(u.session.Idle/time.Second)
		p.Staff = u.account.Kind == identity.Staff
	}
	return p
}

// render executes a page into a buffer first, so a template error becomes a
// clean error page rather than half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, p page) error {
	t, ok := s.templates.pages[name]
	if !ok {
		return fmt.Errorf("web: no template %q", name)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		return fmt.Errorf("web: render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(p.Status)
	_, err := buf.WriteTo(w)
	return err
}

// handlerFunc is a handler that may fail; handle renders its error.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts h to net/http, rendering its error as a page.
//
// A form whose body did not arrive whole (the client went away, or it is
// over the size limit) is refused before the handler runs: PostFormValue
// ignores such errors, and a sign-in with half an email address must not
// count as an attempt.
func (s *Server) handle(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); r.Method == http.MethodPost && mt == "application/x-www-form-urlencoded" {
			if err := r.ParseForm(); err != nil {
				var tooLarge *http.MaxBytesError
				if errors.As(err, &tooLarge) {
					s.renderError(w, r, apperr.Wrap(err, apperr.TooLarge, "The request is too large."))
				} else {
					s.renderError(w, r, apperr.Wrap(err, apperr.Invalid, "The form did not arrive whole. Please try again."))
				}
				return
			}
		}
		if err := h(w, r); err != nil {
			s.renderError(w, r, err)
		}
	}
}

// renderError writes err as an error page (or JSON for clients that ask for
// it). The page says only what the status means in the reader's language
// and a reference; the cause goes to the log, never to the page.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, err error) {
	status := apperr.HTTPStatus(err)
	ctx := r.Context()
	if status >= 500 {
		s.log.ErrorContext(ctx, "request failed", "status", status, "err", err)
	} else {
		s.log.InfoContext(ctx, "request refused", "status", status, "code", string(apperr.CodeOf(err)))
	}
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{
			"error": string(apperr.CodeOf(err)), "message": apperr.MessageOf(err),
			"request_id": telemetry.RequestID(ctx),
		})
		return
	}
	p := s.newPage(w, r, "")
	p.Status = status
	p.TitleID, p.BodyID = errorMessageIDs(status)
	if rerr := s.render(w, r, "error", p); rerr != nil {
		s.log.ErrorContext(ctx, "render error page", "err", rerr)
		http.Error(w, http.StatusText(status), status)
	}
}

func errorMessageIDs(status int) (title, body string) {
	switch status {
	case 404, 405, 413, 429, 503:
		return fmt.Sprintf("error.%d.title", status), fmt.Sprintf("error.%d.body", status)
	}
	if status < 500 {
		return "error.4xx.title", "error.4xx.body"
	}
	return "error.5xx.title", "error.5xx.body"
}

func wantsJSON(r *http.Request) bool {
	if isAPI(r) {
		return true
	}
	a := r.Header.Get("Accept")
	return strings.Contains(a, "application/json") && !strings.Contains(a, "text/html")
}
