// Package web is carefront's HTTP front: the middleware every request passes
// (request id, security headers with a per-response CSP nonce, body limits,
// logging and metrics by route pattern), the server-rendered pages of the
// portal (html/template, U.S. Web Design System, English and Spanish) and
// the static files they use, all embedded in the binary.
//
// It never writes PHI to logs, metrics or error pages, and it never reads
// clinical data itself: handlers ask the domain packages, which decide and
// audit every access.
package web

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"carefront/internal/access"
	"carefront/internal/accesslog"
	"carefront/internal/appointments"
	"carefront/internal/checkin"
	"carefront/internal/clinical"
	"carefront/internal/consent"
	"carefront/internal/identity"
	"carefront/internal/locale"
	"carefront/internal/messaging"
	"carefront/internal/notify"
	"carefront/internal/requests"
	"carefront/internal/session"
	"carefront/internal/shl"
	"carefront/internal/telemetry"
	"carefront/internal/views"
)

// Options are what the web layer needs from the rest of carefront.
type Options struct {
	Logger  *slog.Logger
	Metrics *telemetry.Metrics // nil disables metrics
	Catalog *locale.Catalog
	// Ready reports why the server cannot serve yet (nil when it can).
	Ready        func(ctx context.Context) error
	MaxBodyBytes int64
	// BaseURL is the portal's public URL (scheme://host[:port]), used for
	// links in emails; never taken from a request's Host header.
	BaseURL string
	// TLS says the portal is reached over HTTPS (directly or through a
	// proxy that terminates TLS), which turns on HSTS and Secure cookies.
	TLS     bool
	Version string
	// Demo shows on every page that this is a demonstration, not for real
	// patients.
	Demo bool
	// Clinical is the only way pages reach clinical data: it decides and
	// audits every read and search made for the signed-in person.
	Clinical *clinical.Gateway
	// Views builds what the record pages and the view API show (through
	// Clinical). With Views nil the record pages are not served.
	Views *views.Builder
	// Policies keeps each patient's choices (their release of results)
	// and compiles their access policy.
	Policies *access.Store
	// Terms keeps the terms of use; nil asks for none.
	Terms *consent.TermsBook
	// Research keeps research studies and participation; nil offers none.
	Research *consent.Research
	// Links keeps SMART Health Links; nil serves none.
	Links *shl.Links
	// Messages keeps secure messages with the care team; nil serves no
	// messaging pages.
	Messages *messaging.Store
	// Appointments books, moves and cancels visits; nil serves no booking
	// pages.
	Appointments *appointments.Store
	// CheckIn is eCheck-in before visits; nil offers none.
	CheckIn *checkin.Store
	// Video runs video visits; nil offers none.
	Video *Video
	// Requests are refill and renewal requests and the clinicians' queue
	// of patients' requests; nil offers none.
	Requests *requests.Store
	// ShareLimiter bounds share-link manifest requests per client address.
	ShareLimiter Limiter
	// AccessLog reads "Who viewed my record" from the audit trail.
	AccessLog *accesslog.Log
	// Grants keeps caregiver grants (whose records a person may switch
	// to). Nil: no one holds caregiver access.
	Grants *consent.Grants
	// Sanitizer cleans documents' HTML before a page shows it.
	Sanitizer views.Sanitizer
	// DownloadLimiter bounds record downloads per account (3 an hour).
	DownloadLimiter Limiter
	// MessageLimiter bounds the messages a patient or caregiver sends, per
	// account (10 at once, then 10 an hour); nil does not. Drafts and the
	// care team's answers are not counted.
	MessageLimiter Limiter
	// BookingLimiter bounds the visits a patient or caregiver books, moves
	// and cancels, per account (10 at once, then 10 a day); nil does not.
	BookingLimiter Limiter

	// Sign-in. With Auth nil the identity pages are not served.
	Auth     *identity.Auth
	Sessions *session.Manager
	// Lookup reads a patient's date of birth and last name for activation.
	Lookup identity.PatientLookup
	// Limiter bounds sign-in and activation attempts per client address.
	Limiter Limiter
	// CeremonyLimiter bounds passkey sign-in prompts begun per client
	// address (each stores a challenge). The sign-in page begins one on
	// every visit for the autofill, so it has its own, roomier budget.
	CeremonyLimiter Limiter
	// TrustedProxies are the load balancers and proxies in front of
	// carefront: only from them is X-Forwarded-For believed (clientAddr).
	TrustedProxies []netip.Prefix
	// IdleTimeout ends a person's session after this long without a
	// request (default 15 minutes; staff 10).
	IdleTimeout time.Duration
	// Places names the approximate place of a session's address on the
	// account security page (a GeoIP database); nil shows none.
	Places interface {
		Place(addr, lang string) string
	}
	// StepUpAge is how recent a second-factor check must be for sensitive
	// changes (default 5 minutes).
	StepUpAge time.Duration
	// Apps serves SMART on FHIR: the authorization server, the FHIR API,
	// the authorization screen and the connected apps page. Nil serves
	// none of it.
	Apps *Apps
	// Outbox, in demo mode, is shown at /dev/outbox: the emails carefront
	// would have sent.
	Outbox *notify.Outbox
}

// Limiter is a budget of attempts per key (a client address): in memory
// (ratelimit.Limiter) for one instance, in the database (ratelimit.Shared)
// for several.
type Limiter interface {
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration)
}

// Server holds the parsed templates and static files.
type Server struct {
	opts      Options
	log       *slog.Logger
	templates *templates
	static    *staticFiles
	handler   http.Handler
}

// New parses the templates and indexes the static files; a mistake in
// either fails here, at start-up.
func New(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	st, err := loadStatic()
	if err != nil {
		return nil, err
	}
	tp, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, log: opts.Logger, templates: tp, static: st}
	s.handler = s.middleware(s.withSession(s.routes()))
	return s, nil
}

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }
