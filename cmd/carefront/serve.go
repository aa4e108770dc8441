package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"carefront/internal/access"
	"carefront/internal/accesslog"
	"carefront/internal/appointments"
	"carefront/internal/audit"
	"carefront/internal/checkin"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/clinical/upstream"
	"carefront/internal/config"
	"carefront/internal/consent"
	"carefront/internal/demo"
	"carefront/internal/fhirapi"
	"carefront/internal/geoip"
	"carefront/internal/identity"
	"carefront/internal/jobs"
	"carefront/internal/locale"
	"carefront/internal/messaging"
	"carefront/internal/notify"
	"carefront/internal/oauth"
	"carefront/internal/ratelimit"
	"carefront/internal/requests"
	"carefront/internal/seal"
	"carefront/internal/session"
	"carefront/internal/shl"
	"carefront/internal/sqldb"
	"carefront/internal/telehealth"
	"carefront/internal/telemetry"
	"carefront/internal/views"
	"carefront/internal/web"
)

// sealedColumns lists every column holding sealed values, for background
// re-encryption after "keys rotate". Features that seal a column add it here.
var sealedColumns = slices.Concat(identity.SealedColumns, shl.SealedColumns, oauth.SealedColumns, messaging.SealedColumns, telehealth.SealedColumns)

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, _, err := parseFlags("serve", "Runs the portal until SIGTERM or SIGINT, then finishes in-flight requests and\ncommits pending audit records before it exits.", args, getenv, stdout, nil)
	if err != nil {
		return err
	}
	if getenv(notify.TestOutboxDir) != "" && !cfg.Demo {
		// The test sink keeps copies of notifications and the texts of
		// messages sent (to scan the first for the second): made-up
		// people's only.
		return &config.Error{Setting: notify.TestOutboxDir, Problem: "is for tests and works with --demo only"}
	}
	log := telemetry.NewLogger(stdout, cfg.LogLevel)
	ver := buildVersion()

	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return err
	}
	k, err := keys(cfg)
	if err != nil {
		return err
	}
	auditKeyring, err := auditKeys(cfg, true)
	if err != nil {
		return err
	}
	catalog, err := locale.Load()
	if err != nil {
		return err
	}
	var metrics *telemetry.Metrics
	if cfg.MetricsAddr != "" {
		metrics = telemetry.NewMetrics()
	}
	host, _ := os.Hostname()
	aw := audit.NewWriter(db, audit.Options{
		Signer: auditKeyring.Primary(), Observer: observerName(host),
		CheckpointEvery: cfg.AuditCheckpoint, CheckpointInterval: cfg.AuditCheckpointInterval,
		MACKeys: auditKeyring.Trust().MACKeys,
		Observe: func(n int, took time.Duration, err error) {
			if metrics != nil {
				metrics.ObserveAudit(n, took, err)
			}
			if err != nil {
				log.Error("audit commit failed", "records", n, "err", err)
			}
		},
	})
	if err := aw.Append(ctx, audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypeApplicationStart},
		Action: audit.Execute, Outcome: audit.Success}); err != nil {
		aw.Close(context.Background())
		return fmt.Errorf("cannot write the audit trail: %w", err)
	}
	fhirStore, err := newStore(cfg, db)
	if err != nil {
		aw.Close(context.Background())
		return err
	}
	if cfg.Demo {
		seeded, err := demo.Seed(ctx, fhirStore, aw, db.Now())
		if err != nil {
			aw.Close(context.Background())
			return fmt.Errorf("demo data: %w", err)
		}
		if seeded {
			log.Info("demo population written (synthetic people, not for real patients)")
		}
		if _, err := demo.SeedSlots(ctx, fhirStore, db.Now(), cfg.ClinicTimeZone); err != nil {
			aw.Close(context.Background())
			return err
		}
		if err := demo.SeedClinic(ctx, fhirStore); err != nil {
			aw.Close(context.Background())
			return err
		}
		if cfg.CheckInForms == "" {
			cfg.CheckInForms = demo.CheckInForms
		}
	}

	source, mode, err := clinicalSource(cfg, fhirStore)
	if err != nil {
		aw.Close(context.Background())
		return err
	}
	log.Info("clinical data source", "source", mode)

	ids := identity.NewStore(db, k)
	ids.EmailKey = auditKeyring.Signers[0].DeriveKey("email-hash")
	// Each argon2id hash holds 19 MiB and a core for about 30 ms: one per
	// core at once, half as many again waiting for the next free slot (so
	// none idles between requests), the rest told to retry (429) at once.
	// Hashes run on low-priority threads, and Go gets twice the cores'
	// worth of Ps, so requests (and fast 429s) are not stuck behind them.
	cores := machineProcs()
	hasher := identity.NewHasher(identity.DefaultParams, cores)
	runtime.GOMAXPROCS(2 * cores)
	sessions := session.NewManager(db)
	var mail notify.Sender
	var outbox *notify.Outbox
	if cfg.SMTPAddr != "" {
		mail = &notify.SMTP{Addr: cfg.SMTPAddr, From: cfg.SMTPFrom, Username: cfg.SMTPUsername, Password: cfg.SMTPPassword}
	} else {
		outbox = notify.NewOutbox(200)
		mail = outbox
	}
	secure := cfg.TLS() || strings.HasPrefix(cfg.BaseURL, "https://")
	sessions.Insecure = !secure // plain http://localhost while developing
	if cfg.Demo {
		logins, err := demo.SeedAccounts(ctx, ids, hasher)
		if err != nil {
			aw.Close(context.Background())
			return fmt.Errorf("demo accounts: %w", err)
		}
		if err := demo.SeedGrants(ctx, fhirStore, &consent.Grants{DB: db, Audit: aw, Store: fhirStore, Ages: agePolicy(cfg)}, db.Now()); err != nil {
			aw.Close(context.Background())
			return err
		}
		if err := demo.SeedPools(ctx, &messaging.Store{DB: db, Audit: aw}); err != nil {
			aw.Close(context.Background())
			return fmt.Errorf("demo pools: %w", err)
		}
		log.Info("demo accounts (made-up people; password and authenticator key are in the README)", "accounts", logins,
			"password", demo.DemoPassword, "authenticator_key", demo.DemoTOTPSecret)
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w; set --addr (CAREFRONT_ADDR) to a free address", cfg.Addr, err)
	}
	var mln net.Listener
	if cfg.MetricsAddr != "" {
		if mln, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			ln.Close()
			return fmt.Errorf("listen on %s: %w; set --metrics-addr (CAREFRONT_METRICS_ADDR) to a free address, or off", cfg.MetricsAddr, err)
		}
	}

	scheme := "http"
	if cfg.TLS() {
		scheme = "https"
	}
	base := cfg.BaseURL
	if base == "" {
		base = localURL(scheme, ln.Addr())
	}
	rp, err := identity.NewRelyingParty(base, "carefront")
	closeListeners := func() {
		ln.Close()
		if mln != nil {
			mln.Close()
		}
	}
	if err != nil {
		closeListeners()
		return &config.Error{Setting: "CAREFRONT_BASE_URL (--base-url)", Problem: err.Error()}
	}
	// Per-address budgets: in memory for the embedded database (one
	// instance), in the database on PostgreSQL, where several instances
	// behind a load balancer must spend one budget.
	limiter := func(name string, perSecond float64, burst int) web.Limiter {
		if db.Dialect == sqldb.Postgres {
			return ratelimit.NewShared(db, name, perSecond, burst)
		}
		return ratelimit.New(perSecond, burst, 100_000)
	}
	auth := &identity.Auth{Store: ids, Hasher: hasher, Audit: aw, Mail: mail, Keys: k, WebAuthn: rp, Zone: cfg.ClinicTimeZone,
		SMS: notify.LogSMS{Log: log.With("component", "sms")}}
	if outbox != nil {
		auth.SMS = outbox // shown at /dev/outbox beside the email
	}
	grants := &consent.Grants{DB: db, Audit: aw, Mail: auth, AcceptURL: base + "/caregiver/accept?code=", Store: fhirStore,
		Ages: agePolicy(cfg)}
	comingOfAge, comingOfAgeEvery := grants.ComingOfAgeJob()
	oauthFlow := &oauth.Flow{DB: db, Audit: aw, Store: fhirStore, Notices: auth, AccessTTL: cfg.AccessTokenTTL, RefreshTTL: cfg.RefreshTokenTTL}
	purge, purgeEvery := oauthFlow.PurgeJob()
	visits := &appointments.Store{DB: db, FHIR: fhirStore, Audit: aw, Reminders: auth, Policy: cfg.VisitChangeBefore,
		MaxUpcoming: cfg.VisitMaxUpcoming}
	if cfg.VisitChangeBefore == 0 {
		visits.Policy = time.Nanosecond // 0s: changes allowed until the visit starts
	}
	forms, err := checkin.ParseForms(cfg.CheckInForms)
	if err != nil {
		closeListeners()
		return &config.Error{Setting: "CAREFRONT_CHECKIN_QUESTIONNAIRES (--checkin-questionnaires)", Problem: err.Error()}
	}
	asks := &requests.Store{DB: db, FHIR: fhirStore, Audit: aw, Notices: auth}
	checkins := &checkin.Store{DB: db, FHIR: fhirStore, Audit: aw, Appointments: visits, Forms: forms, Requests: asks}
	var caresFor requests.Cares // the gateway's, set below before the queue starts
	deadlines, deadlinesEvery := asks.DeadlineJob(log.With("component", "requests"), staffNotices{auth},
		func(ctx context.Context, practitioner, patient string) (bool, error) {
			return caresFor(ctx, practitioner, patient)
		})
	queue, err := jobs.New(db, jobs.Options{Logger: log.With("component", "jobs"), Periodic: []jobs.Periodic{comingOfAgeEvery, purgeEvery, deadlinesEvery}},
		auth.MailHandler(), comingOfAge, purge, visits.ReminderHandler(), deadlines)
	if err != nil {
		closeListeners()
		return err
	}
	auth.Jobs = queue
	visits.Jobs = queue
	var places interface {
		Place(addr, lang string) string
	}
	if cfg.GeoIPDB != "" {
		g, err := geoip.Open(cfg.GeoIPDB)
		if err != nil {
			closeListeners()
			return &config.Error{Setting: "CAREFRONT_GEOIP_DB (--geoip-db)", Problem: err.Error()}
		}
		defer g.Close()
		places = g
	}
	dict, err := views.LoadDictionary(cfg.ResultsDictionary)
	if err != nil {
		closeListeners()
		return &config.Error{Setting: "CAREFRONT_RESULTS_DICTIONARY (--results-dictionary)", Problem: err.Error()}
	}
	labeler := fhirStore.Labels
	policies := &access.Store{DB: db, Audit: aw, Loaders: []access.Loader{grants.LoadPolicy}}
	// Messages are the record's Communications, whatever the source.
	hours, err := messaging.ParseOfficeHours(cfg.OfficeHours, cfg.ClinicTimeZone)
	if err != nil {
		closeListeners()
		return &config.Error{Setting: "CAREFRONT_OFFICE_HOURS (--office-hours)", Problem: err.Error()}
	}
	messages := &messaging.Store{DB: db, Keys: k, Audit: aw, Notices: auth, Hours: hours}
	record := source
	if mode != "embedded" {
		// What carefront writes itself (bookings, check-in answers,
		// requests) stays in its own store, read before the EHR's.
		record = &clinical.Overlay{Own: fhirStore, Upstream: source, Types: clinical.OwnTypes}
	}
	gateway := &clinical.Gateway{Source: &messaging.Source{Clinical: record, Store: messages}, Audit: aw, Policies: policies,
		Labeler: labeler, CareMonths: cfg.CareMonths}
	caresFor = gateway.CaresFor
	// A visit's reminders also go to the caregivers who may see it.
	visits.Gateway = gateway
	visits.Caregivers = func(ctx context.Context, patient string) ([]string, error) {
		pol, err := policies.Policy(ctx, patient)
		if err != nil {
			return nil, err
		}
		users := make([]string, len(pol.Proxies))
		for i, p := range pol.Proxies {
			users[i] = p.Account
		}
		return users, nil
	}
	if mode != "embedded" {
		gateway.Consents = &consent.EHRConsents{EHR: source} // the EHR's privacy Consents bind the portal too
	}
	builder := &views.Builder{Gateway: gateway, Dict: dict, Sequential: mode == "embedded",
		Cache: &views.Cache{TTL: views.DefaultCacheTTL}}
	// SMART on FHIR: the authorization server and the FHIR API for apps.
	// zitadel/oidc logs through slog's default logger: carefront's own,
	// which is JSON and carries no request data beyond what it is given.
	slog.SetDefault(log.With("component", "oauth"))
	appClients := &oauth.Clients{DB: db, Audit: aw, Production: cfg.Production()}
	appServer, appHandler, err := oauth.New(oauth.Options{Issuer: base, Flow: oauthFlow, Clients: appClients,
		Keys: &oauth.Keys{DB: db, Seal: k}, LoginPath: oauth.PathConsent, Production: cfg.Production(), DynamicRegistration: cfg.DynamicRegistration})
	if err != nil {
		closeListeners()
		return err
	}
	apps := &web.Apps{OAuth: appHandler, Flow: oauthFlow, Clients: appClients, Callback: appServer.AuthCallback, FHIRBase: appServer.FHIRBase(), Server: appServer,
		TokenLimiter: limiter("oauth-token", 5, 50),                                                   // per app and address: 50 at once, then 5 a second
		Registration: cfg.DynamicRegistration, RegisterLimiter: limiter("oauth-register", 1.0/60, 10), // per address: 10, then one a minute
		FHIR: &fhirapi.Handler{Flow: oauthFlow, Gateway: gateway, Clients: appClients, Base: appServer.FHIRBase(), Registration: cfg.DynamicRegistration,
			// Per app and record connection, in each instance's memory: a
			// shared budget would add a database write to every read.
			Limiter: ratelimit.New(20, 200, 100_000)}}
	// Video visits: rooms shared by every instance through the database.
	rooms := &telehealth.Rooms{DB: db, Seal: k, Tokens: &telehealth.Tokens{DB: db, Seal: k}, Audit: aw, Log: log.With("component", "telehealth"),
		CheckedIn: func(ctx context.Context, appt string) (time.Time, error) {
			at, err := checkins.CheckedIn(ctx, []string{appt})
			return at[appt], err
		}}
	video := &web.Video{Rooms: rooms, Consents: &telehealth.Consents{Store: fhirStore, Audit: aw},
		Records: &telehealth.Records{Store: fhirStore, Audit: aw, Rooms: rooms},
		Guests: &telehealth.Guests{DB: db, Seal: k, Audit: aw, Mail: auth,
			Link: func(code string) string { return base + "/visit-guest?code=" + url.QueryEscape(code) }},
		Window: telehealth.Window{Early: cfg.VisitJoinEarly, Grace: cfg.VisitJoinGrace}}
	if cfg.VideoProvider == "livekit" {
		lk, err := liveKit(cfg)
		if err != nil {
			closeListeners()
			return err
		}
		rooms.Provider, video.Provider = lk, "livekit"
		// The visit page's browser connects to LiveKit itself.
		if u, err := url.Parse(cfg.LiveKitURL); err == nil {
			video.ConnectTo = []string{"wss://" + u.Host, "https://" + u.Host}
			if u.Scheme == "http" || u.Scheme == "ws" {
				video.ConnectTo = []string{"ws://" + u.Host, "http://" + u.Host}
			}
		}
	}
	turnServer, err := startTURN(cfg, video)
	if err != nil {
		closeListeners()
		return err
	}
	if turnServer != nil {
		defer turnServer.Close()
	}
	srv, err := web.New(web.Options{
		Logger: log, Metrics: metrics, Catalog: catalog, Ready: db.Ready,
		MaxBodyBytes: cfg.MaxBodyBytes, TLS: cfg.TLS() || len(cfg.BaseURL) > 8 && cfg.BaseURL[:8] == "https://",
		Version: ver, Demo: cfg.Demo,
		Clinical: gateway,
		// On the embedded store a view's queries compete for the same
		// cores, so they run one after another; against an EHR each is a
		// round trip, and they run at once (bench/README.md, homebench).
		Views: builder,
		// Share links: passcodes hashed on a budget of their own, so a
		// flood of guesses cannot slow sign-in.
		Messages: messages, Appointments: visits, CheckIn: checkins, Requests: asks, Video: video,
		Links: &shl.Links{DB: db, Audit: aw, Keys: k, Views: builder, BaseURL: base,
			Hasher: identity.NewHasher(identity.DefaultParams, 2)},
		ShareLimiter:    limiter("share-link", 0.2, 10), // per address: 10 at once, then one every 5 s
		Policies:        policies,
		Grants:          grants,
		Terms:           &consent.TermsBook{DB: db, Audit: aw},
		Research:        &consent.Research{DB: db, Audit: aw, Store: fhirStore},
		AccessLog:       &accesslog.Log{DB: db, Accounts: ids, Grants: grants, AppName: appClients.Name},
		Apps:            apps,
		Sanitizer:       views.DocumentPolicy(),
		DownloadLimiter: limiter("download", 3.0/3600, 3),        // per account: 3 an hour
		MessageLimiter:  limiter("message-send", 10.0/3600, 10),  // per account: 10 at once, then 10 an hour
		BookingLimiter:  limiter("visit-change", 10.0/86400, 10), // per account: 10 at once, then 10 a day
		Auth:            auth,
		BaseURL:         base,
		Outbox:          outbox,
		Sessions:        sessions, IdleTimeout: cfg.SessionIdle, StepUpAge: cfg.StepUpAge, Places: places,
		Lookup:          patientLookup(&clinical.Gateway{Source: source, Audit: aw}),
		Limiter:         limiter("signin", 0.5, 10), // per address: 10 at once, then one every 2 s
		CeremonyLimiter: limiter("passkey", 1, 30),  // passkey prompts: 30 at once, then one a second
		TrustedProxies:  cfg.TrustedProxies,
	})
	if err != nil {
		closeListeners()
		return err
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if cfg.TLS() {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return &config.Error{Setting: "CAREFRONT_TLS_CERT_FILE (--tls-cert)", Problem: "cannot load the certificate and key: " + err.Error()}
		}
		hs.TLSConfig = serverTLS(cert)
	}
	errc := make(chan error, 2)
	go func() {
		if cfg.TLS() {
			errc <- hs.ServeTLS(ln, "", "")
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	var ms *http.Server
	if mln != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metrics.Handler())
		ms = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { errc <- ms.Serve(mln) }()
	}
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	if err := queue.Start(bg); err != nil {
		hs.Close()
		if aerr := closeAudit(aw, true); aerr != nil {
			log.Error("stopped without closing the audit trail", "err", aerr)
		}
		return fmt.Errorf("job queue: %w", err)
	}
	go rooms.Run(bg)
	go reencrypt(bg, log, db, k)
	go relabel(bg, log, fhirStore)
	if cfg.AuditVerifyInterval > 0 {
		go verifyAuditEvery(bg, log, metrics, db, auditKeyring, cfg)
	}

	url := base + "/"
	attrs := []any{"url", url, "listen", ln.Addr().String(), "version", ver, "database", string(db.Dialect)}
	if mln != nil {
		attrs = append(attrs, "metrics", "http://"+mln.Addr().String()+"/metrics")
	}
	log.Info("carefront is running at "+url, attrs...)

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down: finishing in-flight requests", "timeout", cfg.ShutdownTimeout.String())
	case serveErr = <-errc:
		log.Error("server stopped", "err", serveErr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		// Requests still running past the timeout are cut off; the audit
		// trail is still closed properly below.
		log.Warn("shutdown timeout passed: closing the connections of requests still running", "timeout", cfg.ShutdownTimeout.String())
		hs.Close()
	}
	if ms != nil {
		ms.Shutdown(sctx)
		ms.Close()
	}
	// Video visits' WebSockets are not requests Shutdown waits for: end
	// them, and let their leave records be written, before the audit
	// trail closes.
	if err := rooms.Close(sctx); err != nil {
		log.Warn("video visit connections still open at shutdown", "err", err)
	}
	// Jobs running now (a mail being sent) may finish; what does not is
	// run again later, by this instance or another.
	qctx, qcancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := queue.Stop(qctx); err != nil {
		log.Warn("job queue did not drain", "err", err)
	}
	qcancel()
	stopBG()
	if err := closeAudit(aw, serveErr != nil); err != nil {
		log.Error("stopped without closing the audit trail", "err", err)
		return err
	}
	log.Info("stopped")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

// auditCloseTimeout bounds writing the Application Stop record and the final
// checkpoint. It is a fresh deadline: the shutdown timeout may be spent on
// requests that would not finish.
const auditCloseTimeout = 10 * time.Second

// closeAudit appends the Application Stop record and closes the writer,
// which signs the final checkpoint; the error says which of the two failed.
func closeAudit(aw *audit.Writer, failed bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), auditCloseTimeout)
	defer cancel()
	outcome := audit.Success
	if failed {
		outcome = audit.SeriousFailure
	}
	appendErr := aw.Append(ctx, audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypeApplicationStop},
		Action: audit.Execute, Outcome: outcome})
	if appendErr != nil {
		appendErr = fmt.Errorf("application stop record: %w", appendErr)
	}
	closeErr := aw.Close(ctx)
	if closeErr != nil {
		closeErr = fmt.Errorf("final audit checkpoint: %w", closeErr)
	}
	return errors.Join(appendErr, closeErr)
}

// localURL is the portal's address when no public URL is set: a loopback
// or any-address listener is named localhost, since passkeys (WebAuthn)
// refuse IP addresses and browsers treat localhost as a secure context.
func localURL(scheme string, addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return scheme + "://" + addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// observerName names this instance in audit records: host names are ids of
// machines, not of people.
func observerName(host string) string {
	if host == "" {
		return "carefront"
	}
	return "carefront@" + host
}

// relabelEvery is how often serve checks that the search index follows
// its labelling (another process, an older build during a rolling
// upgrade, may have labelled it otherwise).
const relabelEvery = 10 * time.Minute

// relabel brings the search index's derived security labels in line with
// this build's labelling (store.Relabel) when they follow another one, at
// start and every relabelEvery.
func relabel(ctx context.Context, log *slog.Logger, s *store.Store) {
	for {
		relabelOnce(ctx, log, s)
		select {
		case <-ctx.Done():
			return
		case <-time.After(relabelEvery):
		}
	}
}

func relabelOnce(ctx context.Context, log *slog.Logger, s *store.Store) {
	st, err := s.LabelIndex(ctx)
	if err != nil || st.Current {
		if err != nil && ctx.Err() == nil {
			log.Error("label index state unreadable", "err", err)
		}
		return
	}
	start := time.Now()
	n, err := s.Relabel(ctx)
	if err != nil {
		if ctx.Err() == nil {
			log.Error("relabelling the search index failed; searches are still decided per resource", "resources", n, "err", err)
		}
		return
	}
	log.Info("search index labelled", "labelling", s.Labels.Fingerprint(), "resources", n, "took_ms", time.Since(start).Milliseconds())
}

// reencrypt moves sealed columns to the primary key after a rotation.
func reencrypt(ctx context.Context, log *slog.Logger, db *sqldb.DB, k *seal.Keys) {
	for _, c := range sealedColumns {
		n, err := seal.Reencrypt(ctx, db, k, c, 500)
		if err != nil {
			if ctx.Err() == nil {
				log.Error("re-encryption failed", "table", c.Table, "column", c.Column, "err", err)
			}
			return
		}
		if n > 0 {
			log.Info("re-encrypted with the new key", "table", c.Table, "column", c.Column, "rows", n)
		}
	}
}

// clinicalSource returns the embedded store, or the upstream EHR client
// when CAREFRONT_FHIR_UPSTREAM is set, and a name of it for the log (the
// EHR's host only: URLs may carry tokens).
func clinicalSource(cfg config.Config, embedded *store.Store) (clinical.Source, string, error) {
	if cfg.FHIRUpstream == "" {
		return embedded, "embedded", nil
	}
	opts := upstream.Options{BaseURL: cfg.FHIRUpstream, Token: cfg.FHIRUpstreamToken}
	if cfg.FHIRUpstreamKey != "" {
		key, err := upstream.ParsePrivateKey(cfg.FHIRUpstreamKey)
		if err != nil {
			return nil, "", &config.Error{Setting: "CAREFRONT_FHIR_UPSTREAM_KEY", Problem: err.Error()}
		}
		opts.Backend = &upstream.Backend{ClientID: cfg.FHIRUpstreamClientID, Key: key, KeyID: cfg.FHIRUpstreamKeyID,
			TokenURL: cfg.FHIRUpstreamTokenURL, Scope: cfg.FHIRUpstreamScope}
	}
	c, err := upstream.New(opts)
	if err != nil {
		return nil, "", &config.Error{Setting: "CAREFRONT_FHIR_UPSTREAM", Problem: err.Error()}
	}
	u, _ := url.Parse(cfg.FHIRUpstream)
	return c, "upstream " + u.Host, nil
}

// patientLookup reads the date of birth and last name on a patient's
// record, for activation: through the gateway, as identity proofing, which
// may read Patient resources only, and audited.
func patientLookup(gw *clinical.Gateway) identity.PatientLookup {
	req := clinical.Request{Principal: access.Principal{Client: "carefront-activation", Role: access.RoleIdentityProofing}}
	return func(ctx context.Context, id string) (identity.Demographics, error) {
		r, err := gw.Read(ctx, req, "Patient", id)
		if err != nil {
			return identity.Demographics{}, err
		}
		var p struct {
			BirthDate string `json:"birthDate"`
			Name      []struct {
				Use    string `json:"use"`
				Family string `json:"family"`
			} `json:"name"`
		}
		if err := json.Unmarshal(r.Raw, &p); err != nil {
			return identity.Demographics{}, err
		}
		d := identity.Demographics{BirthDate: p.BirthDate}
		for _, n := range p.Name {
			if d.FamilyName == "" || n.Use == "official" {
				d.FamilyName = n.Family
			}
		}
		return d, nil
	}
}

// serverTLS is the portal's TLS configuration: TLS 1.2 or 1.3, and on 1.2
// only forward-secret AEAD suites (ECDHE with AES-GCM or ChaCha20-Poly1305).
// Go's defaults still offer CBC suites on 1.2, which scanners flag as open
// to LUCKY13-style timing attacks. TLS 1.3 suites are not configurable and
// are all AEAD.
func serverTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}
}

// verifyAuditEvery verifies the whole audit trail on a schedule, with every
// key of the keyring (so record MACs are checked too), and reports the
// result as a log line and metrics. A failure is an error in the log: the
// trail was altered, or a writer stopped without signing.
func verifyAuditEvery(ctx context.Context, log *slog.Logger, metrics *telemetry.Metrics, db *sqldb.DB, keys *audit.Keyring, cfg config.Config) {
	t := time.NewTicker(cfg.AuditVerifyInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		o := keys.Trust()
		// Twice the interval: a record written just now by another
		// instance may still be waiting for its writer's tick.
		o.Interval = 2 * cfg.AuditCheckpointInterval
		start := time.Now()
		rep, err := audit.Verify(ctx, db, o)
		if ctx.Err() != nil {
			return
		}
		if metrics != nil {
			metrics.ObserveAuditVerify(err == nil, rep.Unsigned)
		}
		var ve *audit.VerifyError
		switch {
		case errors.As(err, &ve):
			log.Error("audit trail verification FAILED", "record", ve.Seq, "problem", ve.Problem)
		case err != nil:
			log.Error("audit trail verification could not run", "err", err)
		default:
			log.Info("audit trail verified", "records", rep.Records, "checkpoints", rep.Checkpoints,
				"unsigned", rep.Unsigned, "took_ms", time.Since(start).Milliseconds())
		}
	}
}

// staffNotices gives the correction-deadline job the clinicians to remind
// (identity's staff accounts) and queues their notices.
type staffNotices struct{ auth *identity.Auth }

func (n staffNotices) Clinicians(ctx context.Context) ([]requests.Clinician, error) {
	list, err := n.auth.Store.Clinicians(ctx)
	out := make([]requests.Clinician, len(list))
	for i, c := range list {
		out[i] = requests.Clinician{Account: c.AccountID, Practitioner: "Practitioner/" + c.PractitionerID}
	}
	return out, err
}

func (n staffNotices) QueueNotice(ctx context.Context, tx *sqldb.Tx, accountID, event string) error {
	return n.auth.QueueNotice(ctx, tx, accountID, event)
}

// machineProcs is GOMAXPROCS as the process started with (the cores it
// may use), read once: serve doubles it, and a second serve in the same
// process (the tests run many) must not double it again. Before this,
// every in-process serve doubled it, and the tests' twentieth server ran
// with 65,536 Ps and died of thread exhaustion.
var machineProcs = sync.OnceValue(func() int { return runtime.GOMAXPROCS(0) })

// startTURN starts the embedded TURN server when --turn-listen is set,
// and gives visit pages time-limited credentials for it and for the
// clinic's own TURN servers (--turn-url).
func startTURN(cfg config.Config, video *web.Video) (*telehealth.TURN, error) {
	var secret []byte
	switch {
	case cfg.TURNSecretFile != "":
		b, err := os.ReadFile(cfg.TURNSecretFile)
		if err != nil {
			return nil, &config.Error{Setting: "CAREFRONT_TURN_SECRET_FILE (--turn-secret-file)", Problem: "cannot read it: " + err.Error()}
		}
		secret = bytes.TrimSpace(b)
		if len(secret) < 16 {
			return nil, &config.Error{Setting: "CAREFRONT_TURN_SECRET_FILE (--turn-secret-file)", Problem: "the secret must be at least 16 bytes"}
		}
	case len(cfg.TURNURLs) > 0:
		return nil, &config.Error{Setting: "CAREFRONT_TURN_URL (--turn-url)", Problem: "needs the TURN server's shared secret in --turn-secret-file"}
	case cfg.TURNListen != "":
		// One instance: a secret of its own for this run.
		secret = make([]byte, 32)
		rand.Read(secret)
		secret = []byte(hex.EncodeToString(secret))
	}
	urls := slices.Clone(cfg.TURNURLs)
	var srv *telehealth.TURN
	if cfg.TURNListen != "" {
		if !cfg.TURNPublicIP.IsValid() {
			return nil, &config.Error{Setting: "CAREFRONT_TURN_PUBLIC_IP (--turn-public-ip)", Problem: "the embedded TURN server needs the address browsers reach it at"}
		}
		srv = &telehealth.TURN{Listen: cfg.TURNListen, PublicIP: net.IP(cfg.TURNPublicIP.AsSlice()), Realm: cfg.TURNRealm, Secret: secret}
		if err := srv.Start(); err != nil {
			return nil, &config.Error{Setting: "CAREFRONT_TURN_LISTEN (--turn-listen)", Problem: err.Error()}
		}
		urls = append([]string{srv.URL()}, urls...)
	}
	if len(urls) > 0 {
		video.ICE = func(user string) []telehealth.ICEServer {
			u, p := telehealth.TURNCredentials(secret, user, time.Now(), telehealth.CredentialTTL)
			return []telehealth.ICEServer{{URLs: urls, Username: u, Credential: p}}
		}
	}
	return srv, nil
}

// liveKit is the LiveKit media engine named by --livekit-url,
// --livekit-api-key and --livekit-api-secret-file.
func liveKit(cfg config.Config) (*telehealth.LiveKit, error) {
	switch {
	case cfg.LiveKitURL == "":
		return nil, &config.Error{Setting: "CAREFRONT_LIVEKIT_URL (--livekit-url)", Problem: "--video-provider livekit needs the LiveKit server's URL"}
	case cfg.LiveKitAPIKey == "":
		return nil, &config.Error{Setting: "CAREFRONT_LIVEKIT_API_KEY (--livekit-api-key)", Problem: "--video-provider livekit needs an API key"}
	case cfg.LiveKitAPISecretFile == "":
		return nil, &config.Error{Setting: "CAREFRONT_LIVEKIT_API_SECRET_FILE (--livekit-api-secret-file)", Problem: "--video-provider livekit needs the API key's secret"}
	}
	b, err := os.ReadFile(cfg.LiveKitAPISecretFile)
	if err != nil {
		return nil, &config.Error{Setting: "CAREFRONT_LIVEKIT_API_SECRET_FILE (--livekit-api-secret-file)", Problem: "cannot read it: " + err.Error()}
	}
	secret := string(bytes.TrimSpace(b))
	if len(secret) < 32 {
		return nil, &config.Error{Setting: "CAREFRONT_LIVEKIT_API_SECRET_FILE (--livekit-api-secret-file)", Problem: "the secret must be at least 32 bytes"}
	}
	return &telehealth.LiveKit{URL: cfg.LiveKitURL, APIKey: cfg.LiveKitAPIKey, APISecret: secret}, nil
}
