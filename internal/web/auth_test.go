package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"carefront/internal/audit"
	"carefront/internal/audit/audittest"
	"carefront/internal/identity"
	"carefront/internal/jobs"
	"carefront/internal/notify"
	"carefront/internal/ratelimit"
	"carefront/internal/seal"
	"carefront/internal/session"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

type authHarness struct {
	outbox *notify.Outbox
	srv    *httptest.Server
	client *http.Client
	store  *identity.Store
	clock  *sqldbtest.Clock
	code   string // an activation code for Patient/p1
	db     *sqldb.DB
	auth   *identity.Auth
	ts     testServer
}

func newAuthHarness(t *testing.T, db *sqldb.DB, mods ...func(*Options)) *authHarness {
	t.Helper()
	c := sqldbtest.UseClock(db)
	k, _ := seal.Generate()
	st := identity.NewStore(db, k)
	sig, _ := audit.NewSigner(make([]byte, 32))
	aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test", CheckpointEvery: 100})
	t.Cleanup(func() { aw.Close(context.Background()) })
	outbox := notify.NewOutbox(50)
	srv := httptest.NewUnstartedServer(nil)
	auth := &identity.Auth{Store: st, Hasher: identity.NewHasher(identity.Params{Memory: 8 * 1024, Time: 1, Threads: 1}, 4), Audit: aw, Mail: outbox, Keys: k}
	queue, err := jobs.New(db, jobs.Options{PollInterval: 10 * time.Millisecond}, auth.MailHandler())
	if err != nil {
		t.Fatal(err)
	}
	if err := queue.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { queue.Stop(context.Background()) })
	auth.Jobs = queue
	ts := newTestServer(t, func(o *Options) {
		o.MaxBodyBytes = 1 << 16
		o.Demo, o.Outbox = true, outbox
		o.Auth = auth
		o.BaseURL = "https://" + srv.Listener.Addr().String()
		o.Sessions = session.NewManager(db)
		o.Lookup = func(_ context.Context, id string) (identity.Demographics, error) {
			return identity.Demographics{BirthDate: "1970-01-02", FamilyName: "Rivera"}, nil
		}
		o.Limiter = ratelimit.New(100, 100, 1000)
		for _, m := range mods {
			m(o)
		}
	})
	srv.Config.Handler = ts
	srv.StartTLS()
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	cl := *srv.Client()
	client := &cl
	client.Jar = jar
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	code, _, err := st.Invite(context.Background(), "p1")
	if err != nil {
		t.Fatal(err)
	}
	return &authHarness{srv: srv, client: client, store: st, clock: c, code: code, db: db, outbox: outbox, auth: auth, ts: ts}
}

// mail waits until every queued job has run, then returns the outbox,
// newest first: mail is sent by the job queue, a moment after the request.
func (h *authHarness) mail(t *testing.T) []notify.Message {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		pending, err := jobs.Pending(context.Background(), h.db)
		if err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			return h.outbox.Messages()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d mail jobs still queued", pending)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mailWith is the newest message, once every queued job has run, whose
// subject or text holds substr (mail jobs run side by side, so arrival
// order is not enqueue order).
func (h *authHarness) mailWith(t *testing.T, substr string) notify.Message {
	t.Helper()
	for _, m := range h.mail(t) {
		if strings.Contains(m.Subject, substr) || strings.Contains(m.Text, substr) {
			return m
		}
	}
	t.Fatalf("no mail with %q", substr)
	return notify.Message{}
}

// proveEmail types the code that activation sent to email, as the person
// does before the account can be used.
func (h *authHarness) proveEmail(t *testing.T, email string) {
	t.Helper()
	m := h.mailWith(t, "finish setting up your carefront account")
	code := regexp.MustCompile(`\b\d{6}\b`).FindString(m.Text)
	if m.To != email || code == "" {
		t.Fatalf("the activation code went to %s", m.To)
	}
	if res, _ := h.post(t, "/activate/email", url.Values{"code": {code}}); res.StatusCode != 303 || res.Header.Get("Location") != "/mfa/setup" {
		t.Fatalf("proving the address: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
}

func (h *authHarness) post(t *testing.T, path string, form url.Values, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", h.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res, body(t, res)
}

func (h *authHarness) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	res, err := h.client.Get(h.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	return res, body(t, res)
}

func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var secretRE = regexp.MustCompile(`id="secret">([A-Z2-7 ]+)<`)
var codeRE = regexp.MustCompile(`<li>([A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4})</li>`)

func activation(code, dobDay, password string) url.Values {
	return url.Values{"code": {code}, "family": {"rivera"}, "month": {"1"}, "day": {dobDay}, "year": {"1970"},
		"email": {"ana@example.com"}, "password": {password}, "password2": {password}}
}

func TestActivationThenAuthenticatorThenSignIn(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := newAuthHarness(t, db)
		res, page := h.get(t, "/activate?code="+h.code)
		if res.StatusCode != 200 || !strings.Contains(page, `value="`+h.code+`"`) {
			t.Fatalf("activate page: %d", res.StatusCode)
		}
		// Wrong date of birth: one general message, no account.
		res, page = h.post(t, "/activate", activation(h.code, "3", "a long enough passphrase"))
		if res.StatusCode != 422 || !strings.Contains(page, "We could not match that code") {
			t.Fatalf("wrong birth date: %d", res.StatusCode)
		}
		// A common password is refused beside its field; the typed email is kept.
		res, page = h.post(t, "/activate", activation(h.code, "2", "password1"))
		if res.StatusCode != 422 || !strings.Contains(page, "most common passwords") || !strings.Contains(page, `value="ana@example.com"`) {
			t.Fatalf("common password: %d", res.StatusCode)
		}
		if strings.Contains(page, "password1") {
			t.Error("the refused password was echoed into the page")
		}
		if _, err := h.store.AccountByEmail(context.Background(), "ana@example.com"); err == nil {
			t.Fatal("an account was created by a refused form")
		}
		res, _ = h.post(t, "/activate", activation(h.code, "2", "a long enough passphrase"))
		if res.StatusCode != 303 || res.Header.Get("Location") != "/activate/email" {
			t.Fatalf("activation: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		h.proveEmail(t, "ana@example.com")
		var cookie *http.Cookie
		for _, c := range res.Cookies() {
			if c.Name == session.CookieName {
				cookie = c
			}
		}
		if cookie == nil || !cookie.Secure || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode {
			t.Fatalf("session cookie: %+v", cookie)
		}
		// Authenticator app: a wrong code keeps the same secret; the right
		// one turns it on and shows ten recovery codes once.
		_, page = h.get(t, "/mfa/setup")
		m := secretRE.FindStringSubmatch(page)
		if m == nil || !strings.Contains(page, `src="data:image/png;base64,`) {
			t.Fatalf("setup page has no secret or QR code")
		}
		secret := strings.ReplaceAll(m[1], " ", "")
		res, page = h.post(t, "/mfa/setup", url.Values{"code": {"000000"}})
		if res.StatusCode != 422 || !strings.Contains(page, m[1]) {
			t.Fatalf("wrong setup code: %d, same secret shown again: %v", res.StatusCode, strings.Contains(page, m[1]))
		}
		res, page = h.post(t, "/mfa/setup", url.Values{"code": {totpCode(t, secret, h.clock.Now())}})
		codes := codeRE.FindAllStringSubmatch(page, -1)
		if res.StatusCode != 200 || len(codes) != 10 {
			t.Fatalf("confirm: %d with %d recovery codes", res.StatusCode, len(codes))
		}
		// Signed in now: the header offers sign-out; sign out.
		if _, page = h.get(t, "/"); !strings.Contains(page, `action="/signout"`) {
			t.Error("no sign-out button while signed in")
		}
		res, _ = h.post(t, "/signout", nil)
		if res.StatusCode != 303 {
			t.Fatalf("sign out: %d", res.StatusCode)
		}
		if _, page = h.get(t, "/"); strings.Contains(page, `action="/signout"`) {
			t.Error("still signed in after signing out")
		}
		// Sign-in: a wrong password and an unknown address read the same.
		_, wrong := h.post(t, "/signin", url.Values{"email": {"ana@example.com"}, "password": {"not the password"}})
		_, unknown := h.post(t, "/signin", url.Values{"email": {"nobody@example.com"}, "password": {"not the password"}})
		alert := regexp.MustCompile(`(?s)<div class="usa-alert.*?</div>`)
		if a, b := alert.FindString(wrong), alert.FindString(unknown); a == "" || a != b {
			t.Errorf("wrong password and unknown account answer differently:\n%s\n%s", a, b)
		}
		res, _ = h.post(t, "/signin", url.Values{"email": {"ANA@example.com"}, "password": {"a long enough passphrase"}})
		if res.StatusCode != 303 || res.Header.Get("Location") != "/signin/verify" {
			t.Fatalf("password step: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		h.clock.Add(time.Minute)
		res, page = h.post(t, "/signin/verify", url.Values{"code": {"123456"}})
		if res.StatusCode != 401 || !strings.Contains(page, "That code is not right") {
			t.Fatalf("wrong code: %d", res.StatusCode)
		}
		res, _ = h.post(t, "/signin/verify", url.Values{"code": {codes[0][1]}})
		if res.StatusCode != 303 || res.Header.Get("Location") != "/" {
			t.Fatalf("recovery code: %d", res.StatusCode)
		}
		if _, page = h.get(t, "/"); !strings.Contains(page, `action="/signout"`) {
			t.Error("not signed in after the second factor")
		}
		// The trail has every step: refused and accepted attempts, sessions
		// started, renewed and ended, each session named by its id's hash.
		events := audittest.Events(t, h.db)
		all := strings.Join(events, "\n")
		for _, want := range []string{"session-started-password", "session-renewed-mfa", "signed-out", "bad-password", "unknown-account",
			"bad-totp", "signed-in-recovery-code", "urn:carefront:session-sha256"} {
			if !strings.Contains(all, want) {
				t.Errorf("no audit record with %q", want)
			}
		}
		if strings.Contains(all, "a long enough passphrase") || strings.Contains(all, "ana@example.com") {
			t.Error("the audit trail holds a password or an email address")
		}
	})
}

func TestCrossSitePostAndForgedCookie(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := newAuthHarness(t, db)
		res, _ := h.post(t, "/signin", url.Values{"email": {"a@example.com"}, "password": {"x"}}, "Sec-Fetch-Site", "cross-site")
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site POST: %d, want 403", res.StatusCode)
		}
		u, _ := url.Parse(h.srv.URL)
		h.client.Jar.SetCookies(u, []*http.Cookie{{Name: session.CookieName, Value: strings.Repeat("A", 43), Path: "/", Secure: true}})
		res, _ = h.get(t, "/mfa/setup")
		if res.StatusCode != 303 || res.Header.Get("Location") != "/signin" {
			t.Errorf("forged cookie reached a signed-in page: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
	})
}

// signInDemo creates an account with an authenticator and signs h's client
// in with both factors; it returns the authenticator secret.
func (h *authHarness) signIn(t *testing.T, email string) string {
	t.Helper()
	ctx := context.Background()
	a, err := h.store.AccountByEmail(ctx, email)
	if err != nil {
		hash, _ := identity.HashPassword("a long enough passphrase", identity.Params{Memory: 8 * 1024, Time: 1, Threads: 1})
		// One account per patient record: ana is Patient/p1's, others get
		// records of their own.
		patient := "p1"
		if email != "ana@example.com" {
			patient = "p-" + strings.NewReplacer("@", "-", ".", "-").Replace(email)
		}
		a = &identity.Account{Kind: identity.Person, Email: email, PasswordHash: hash, PatientID: patient}
		if err := h.store.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		if err := h.store.SetTOTPSecret(ctx, a.ID, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"); err != nil {
			t.Fatal(err)
		}
	}
	res, _ := h.post(t, "/signin", url.Values{"email": {email}, "password": {"a long enough passphrase"}})
	if res.StatusCode != 303 {
		t.Fatalf("sign-in: %d", res.StatusCode)
	}
	h.clock.Add(30 * time.Second) // a fresh code: each is single-use
	res, _ = h.post(t, "/signin/verify", url.Values{"code": {totpCode(t, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", h.clock.Now())}})
	if res.StatusCode != 303 {
		t.Fatalf("verify: %d", res.StatusCode)
	}
	return "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
}

func TestAccountSecuritySessionsAndStepUp(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := newAuthHarness(t, db)
		secret := h.signIn(t, "ana@example.com")
		// A second browser signs in to the same account.
		other := &authHarness{srv: h.srv, store: h.store, clock: h.clock, db: h.db}
		jar, _ := cookiejar.New(nil)
		c := *h.srv.Client() // Client returns one shared value: copy it
		c.Jar = jar
		other.client = &c
		other.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		other.signIn(t, "ana@example.com")

		res, page := h.get(t, "/account/security")
		ids := regexp.MustCompile(`name="id" value="([0-9a-f]{64})"`).FindAllStringSubmatch(page, -1)
		if res.StatusCode != 200 || strings.Count(page, "<tr>") != 3 || len(ids) != 1 {
			t.Fatalf("security page: %d, %d rows, %d sign-out buttons", res.StatusCode, strings.Count(page, "<tr>"), len(ids))
		}
		res, _ = h.post(t, "/account/sessions/end", url.Values{"id": {ids[0][1]}})
		if res.StatusCode != 303 {
			t.Fatalf("end session: %d", res.StatusCode)
		}
		if res, _ := other.get(t, "/account/security"); res.StatusCode != 303 || res.Header.Get("Location") != "/signin" {
			t.Errorf("the signed-out browser still sees the page: %d", res.StatusCode)
		}
		// Step-up on a form: new recovery codes need a second factor within
		// 5 minutes. The answer is the confirmation form in place, posting
		// back to the same action; a wrong code changes nothing.
		h.clock.Add(6 * time.Minute)
		res, page = h.post(t, "/account/recovery-codes", nil)
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(page, `action="/account/recovery-codes"`) ||
			!strings.Contains(page, `name="stepup_code"`) || len(codeRE.FindAllString(page, -1)) != 0 {
			t.Fatalf("step-up in place: %d", res.StatusCode)
		}
		res, page = h.post(t, "/account/recovery-codes", url.Values{"stepup_code": {"000000"}})
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(page, `id="code-error"`) || len(codeRE.FindAllString(page, -1)) != 0 {
			t.Fatalf("step-up with a wrong code: %d", res.StatusCode)
		}
		h.clock.Add(30 * time.Second)
		res, page = h.post(t, "/account/recovery-codes", url.Values{"stepup_code": {totpCode(t, secret, h.clock.Now())}})
		if res.StatusCode != 200 || len(codeRE.FindAllString(page, -1)) != 10 {
			t.Fatalf("new recovery codes after step-up: %d", res.StatusCode)
		}
		// Step-up on a page: confirm, then come back to it.
		h.clock.Add(6 * time.Minute)
		res, _ = h.get(t, "/account/password")
		if res.StatusCode != 303 || res.Header.Get("Location") != "/signin/verify?return=%2Faccount%2Fpassword" {
			t.Fatalf("step-up: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		res, page = h.get(t, res.Header.Get("Location"))
		if !strings.Contains(page, `action="/signin/verify?return=%2faccount%2fpassword"`) {
			t.Errorf("the verify form does not carry the way back")
		}
		h.clock.Add(30 * time.Second)
		res, _ = h.post(t, "/signin/verify?return=%2Faccount%2Fpassword", url.Values{"code": {totpCode(t, secret, h.clock.Now())}})
		if res.StatusCode != 303 || res.Header.Get("Location") != "/account/password" {
			t.Fatalf("after step-up: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		if res, _ := h.get(t, "/account/password"); res.StatusCode != 200 {
			t.Fatalf("the page after step-up: %d", res.StatusCode)
		}
		// Idle timeout: "Stay signed in" keeps the session past 15 minutes
		// of reading; without it the session ends.
		h.clock.Add(14 * time.Minute)
		if res, _ := h.post(t, "/session/keepalive", nil); res.StatusCode != http.StatusNoContent {
			t.Fatalf("keepalive: %d", res.StatusCode)
		}
		h.clock.Add(14 * time.Minute)
		if res, _ := h.get(t, "/account/security"); res.StatusCode != 200 {
			t.Fatalf("after keepalive and 14 more minutes: %d", res.StatusCode)
		}
		h.clock.Add(15 * time.Minute)
		if res, _ := h.get(t, "/account/security"); res.StatusCode != 303 {
			t.Fatalf("after 15 idle minutes: %d, want signed out", res.StatusCode)
		}
		if res, _ := h.post(t, "/session/keepalive", nil); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("keepalive when signed out: %d", res.StatusCode)
		}
	})
}

func TestStaffSetupPage(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := newAuthHarness(t, db)
		_, code, _, err := h.store.CreateStaff(context.Background(), identity.NewStaff{Email: "dr.kim@example.org", Role: "clinician", Name: "Dr Kim"})
		if err != nil {
			t.Fatal(err)
		}
		res, page := h.get(t, "/staff/setup?code="+code)
		if res.StatusCode != 200 || !strings.Contains(page, "dr.kim@example.org") {
			t.Fatalf("setup page: %d", res.StatusCode)
		}
		if res, page := h.get(t, "/staff/setup?code=AAAA-BBBB-CCCC-DDDD"); res.StatusCode != 404 || !strings.Contains(page, "This setup link does not work") {
			t.Errorf("bad code: %d", res.StatusCode)
		}
		res, _ = h.post(t, "/staff/setup", url.Values{"code": {code}, "password": {"qwertyuiop"}, "password2": {"qwertyuiop"}})
		if res.StatusCode != 422 {
			t.Errorf("common password: %d", res.StatusCode)
		}
		res, _ = h.post(t, "/staff/setup", url.Values{"code": {code}, "password": {"ward rounds at seven"}, "password2": {"ward rounds at seven"}})
		if res.StatusCode != 303 || res.Header.Get("Location") != "/mfa/setup" {
			t.Fatalf("setup: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		// Staff sessions idle out after 10 minutes.
		if _, page := h.get(t, "/mfa/setup"); !strings.Contains(page, `data-idle-seconds="600"`) {
			t.Error("staff session idle timeout is not 10 minutes")
		}
		if res, _ := h.post(t, "/staff/setup", url.Values{"code": {code}, "password": {"ward rounds at seven"}, "password2": {"ward rounds at seven"}}); res.StatusCode != 404 {
			t.Errorf("setup code reused: %d", res.StatusCode)
		}
	})
}

// A session that has passed only the password step acts for no patient:
// the access decision then denies every clinical read.
func TestPrincipalNeedsTwoFactorsForPatientData(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	acct := &identity.Account{ID: "a1", PatientID: "p1", Kind: identity.Person, EmailVerified: time.Now()}
	one := principal(&signedIn{account: acct, session: &session.Session{Level: session.LevelPassword}}, r)
	two := principal(&signedIn{account: acct, session: &session.Session{Level: session.LevelMFA}}, r)
	if one.Patient != "" || two.Patient != "p1" || two.User != "Person/a1" {
		t.Errorf("one factor: %+v; two factors: %+v", one, two)
	}
	// Nor before the account's address is proven, whatever the factors.
	unproven := &identity.Account{ID: "a2", PatientID: "p2", Kind: identity.Person}
	if p := principal(&signedIn{account: unproven, session: &session.Session{Level: session.LevelMFA}}, r); p.Patient != "" {
		t.Errorf("unproven address, two factors: %+v", p)
	}
	staff := principal(&signedIn{account: &identity.Account{ID: "s1", Kind: identity.Staff, StaffRole: "clinician"}, session: &session.Session{Level: session.LevelMFA}}, r)
	if staff.Role != "clinician" || staff.Patient != "" {
		t.Errorf("staff: %+v", staff)
	}
}

func TestChangePasswordEndsOtherSessions(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := newAuthHarness(t, db)
		h.signIn(t, "ana@example.com")
		other := &authHarness{srv: h.srv, store: h.store, clock: h.clock, db: h.db}
		jar, _ := cookiejar.New(nil)
		c := *h.srv.Client()
		c.Jar = jar
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		other.client = &c
		other.signIn(t, "ana@example.com")
		// h's second factor is now older than a minute but within 5: no step-up.
		res, _ := h.post(t, "/account/password", url.Values{"password": {"letmein123"}, "password2": {"letmein123"}})
		if res.StatusCode != 422 {
			t.Fatalf("common password: %d", res.StatusCode)
		}
		// The current password is required: a session left open and a
		// recent second factor are not enough.
		res, page := h.post(t, "/account/password", url.Values{"password": {"a brand new passphrase"}, "password2": {"a brand new passphrase"}})
		if res.StatusCode != 422 || !strings.Contains(page, `id="current_password-error"`) {
			t.Fatalf("without the current password: %d", res.StatusCode)
		}
		res, page = h.post(t, "/account/password", url.Values{"current_password": {"not my password"}, "password": {"a brand new passphrase"}, "password2": {"a brand new passphrase"}})
		if res.StatusCode != 401 || !strings.Contains(page, `id="current_password-error"`) {
			t.Fatalf("with a wrong current password: %d", res.StatusCode)
		}
		if res, _ := other.get(t, "/account/security"); res.StatusCode != 200 {
			t.Fatalf("a refused change signed the other device out: %d", res.StatusCode)
		}
		h.clock.Add(2 * time.Second) // past the failure's short delay
		res, page = h.post(t, "/account/password", url.Values{"current_password": {"a long enough passphrase"}, "password": {"a brand new passphrase"}, "password2": {"a brand new passphrase"}})
		if res.StatusCode != 200 || !strings.Contains(page, "Your password is changed") {
			t.Fatalf("change: %d", res.StatusCode)
		}
		if res, _ := other.get(t, "/account/security"); res.StatusCode != 303 {
			t.Errorf("the other device is still signed in: %d", res.StatusCode)
		}
		if res, _ := h.get(t, "/account/security"); res.StatusCode != 200 {
			t.Errorf("this device was signed out: %d", res.StatusCode)
		}
		h.post(t, "/signout", nil)
		if res, _ := h.post(t, "/signin", url.Values{"email": {"ana@example.com"}, "password": {"a long enough passphrase"}}); res.StatusCode != 401 {
			t.Errorf("old password still works: %d", res.StatusCode)
		}
		h.clock.Add(time.Minute)
		if res, _ := h.post(t, "/signin", url.Values{"email": {"ana@example.com"}, "password": {"a brand new passphrase"}}); res.StatusCode != 303 {
			t.Errorf("new password refused: %d", res.StatusCode)
		}
	})
}

func TestEmailCodeAndSecurityNotices(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := newAuthHarness(t, db)
		h.signIn(t, "ana@example.com") // creates the account
		h.post(t, "/signout", nil)
		h.clock.Add(time.Minute)
		if res, _ := h.post(t, "/signin", url.Values{"email": {"ana@example.com"}, "password": {"a long enough passphrase"}}); res.StatusCode != 303 {
			t.Fatalf("password: %d", res.StatusCode)
		}
		res, page := h.post(t, "/signin/email-code", nil)
		if res.StatusCode != 200 || !strings.Contains(page, "We sent a code to your email address") {
			t.Fatalf("email code: %d", res.StatusCode)
		}
		msgs := h.mail(t)
		if len(msgs) == 0 || msgs[0].To != "ana@example.com" {
			t.Fatalf("outbox: %+v", msgs)
		}
		code := regexp.MustCompile(`code is (\d{6})\.`).FindStringSubmatch(msgs[0].Text)
		if code == nil {
			t.Fatalf("no code in %q", msgs[0].Text)
		}
		res, _ = h.post(t, "/signin/verify", url.Values{"code": {code[1]}})
		if res.StatusCode != 303 {
			t.Fatalf("verify with the emailed code: %d", res.StatusCode)
		}
		// The demo outbox shows what was sent.
		if res, page := h.get(t, "/dev/outbox"); res.StatusCode != 200 || !strings.Contains(page, "Your carefront sign-in code") {
			t.Errorf("outbox page: %d", res.StatusCode)
		}
		// Changing the password sends a PHI-free notice.
		// (An emailed code is no step-up: the authenticator is asked for in place.)
		h.clock.Add(30 * time.Second)
		if res, _ := h.post(t, "/account/password", url.Values{"current_password": {"a long enough passphrase"}, "password": {"another long passphrase"},
			"password2": {"another long passphrase"}, "stepup_code": {totpCode(t, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", h.clock.Now())}}); res.StatusCode != 200 {
			t.Fatalf("change password with step-up in place: %d", res.StatusCode)
		}
		h.mailWith(t, "Your carefront password was changed")
		// At most three codes per ten minutes.
		h.post(t, "/signout", nil)
		h.clock.Add(time.Minute)
		h.post(t, "/signin", url.Values{"email": {"ana@example.com"}, "password": {"another long passphrase"}})
		h.post(t, "/signin/email-code", nil)
		h.post(t, "/signin/email-code", nil)
		if res, page := h.post(t, "/signin/email-code", nil); res.StatusCode != 429 || !strings.Contains(page, "We sent several codes already") {
			t.Errorf("fourth code: %d", res.StatusCode)
		}
	})
}

func TestForgotPasswordNeedsTheSameBrowserAndASecondFactor(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := newAuthHarness(t, db)
		secret := h.signIn(t, "ana@example.com")
		h.post(t, "/signout", nil)
		alert := regexp.MustCompile(`(?s)<div class="usa-alert.*?</div>`)
		_, known := h.post(t, "/forgot", url.Values{"email": {"ana@example.com"}})
		_, unknown := h.post(t, "/forgot", url.Values{"email": {"nobody@example.com"}})
		if a, b := alert.FindString(known), alert.FindString(unknown); a == "" || a != b {
			t.Errorf("known and unknown addresses answer differently:\n%s\n%s", a, b)
		}
		msgs := h.mail(t)
		if len(msgs) != 1 {
			t.Fatalf("%d mails, want one (none for the unknown address)", len(msgs))
		}
		// The unknown address's request replaced the cookie: ask again so
		// this browser holds the nonce of the known one.
		// A forged Host header does not change where the link points.
		req, _ := http.NewRequest("POST", h.srv.URL+"/forgot", strings.NewReader(url.Values{"email": {"ana@example.com"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Host = "evil.example"
		if res, err := h.srv.Client().Do(req); err != nil || res.StatusCode != 200 {
			t.Fatalf("forgot with another Host: %v", err)
		}
		linkRE := regexp.MustCompile(`https?://[^\s]+/reset\?token=[A-Za-z0-9_-]+`)
		if link := linkRE.FindString(h.mailWith(t, "/reset?token=").Text); !strings.HasPrefix(link, h.srv.URL+"/reset?") {
			t.Errorf("a forged Host made the link %q, want it on %s", link, h.srv.URL)
		}
		h.clock.Add(time.Second)
		h.post(t, "/forgot", url.Values{"email": {"ana@example.com"}})
		link := linkRE.FindString(h.mailWith(t, "/reset?token=").Text)
		if link == "" {
			t.Fatalf("no link in %q", h.mailWith(t, "/reset?token=").Text)
		}
		u, _ := url.Parse(link)
		path := "/reset?" + u.RawQuery
		// Another browser cannot use the link.
		jar, _ := cookiejar.New(nil)
		c := *h.srv.Client()
		c.Jar = jar
		if res, err := c.Get(h.srv.URL + path); err != nil || res.StatusCode != 404 {
			t.Errorf("link in another browser: %v %d", err, res.StatusCode)
		}
		res, page := h.get(t, path)
		if res.StatusCode != 200 || !strings.Contains(page, `name="token"`) {
			t.Fatalf("reset page: %d", res.StatusCode)
		}
		token := u.Query().Get("token")
		res, _ = h.post(t, "/reset", url.Values{"token": {token}, "code": {"000000"}, "password": {"a fresh new passphrase"}, "password2": {"a fresh new passphrase"}})
		if res.StatusCode != 401 {
			t.Errorf("wrong code: %d", res.StatusCode)
		}
		h.clock.Add(30 * time.Second)
		res, page = h.post(t, "/reset", url.Values{"token": {token}, "code": {totpCode(t, secret, h.clock.Now())}, "password": {"a fresh new passphrase"}, "password2": {"a fresh new passphrase"}})
		if res.StatusCode != 200 || !strings.Contains(page, "Your password is changed") {
			t.Fatalf("reset: %d", res.StatusCode)
		}
		if res, _ := h.get(t, path); res.StatusCode != 404 {
			t.Errorf("link used twice: %d", res.StatusCode)
		}
		h.clock.Add(time.Minute)
		if res, _ := h.post(t, "/signin", url.Values{"email": {"ana@example.com"}, "password": {"a fresh new passphrase"}}); res.StatusCode != 303 {
			t.Errorf("sign-in with the new password: %d", res.StatusCode)
		}
		// A link older than 20 minutes does not work.
		h.post(t, "/signout", nil)
		h.clock.Add(identity.ResetValid) // past the limit of three links per 20 minutes
		n := len(h.mail(t))
		h.post(t, "/forgot", url.Values{"email": {"ana@example.com"}})
		if len(h.mail(t)) != n+1 {
			t.Fatalf("no new link was sent")
		}
		late := regexp.MustCompile(`/reset\?token=[A-Za-z0-9_-]+`).FindString(h.mailWith(t, "/reset?token=").Text)
		h.clock.Add(identity.ResetValid)
		if res, _ := h.get(t, late); res.StatusCode != 404 {
			t.Errorf("expired link: %d", res.StatusCode)
		}
	})
}

// Someone with no second factor left is told how the clinic restores
// access; the link alone changes nothing.
func TestResetWithoutAnyFactorExplainsTheWayBack(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := newAuthHarness(t, db)
		hash, _ := identity.HashPassword("a long enough passphrase", identity.Params{Memory: 8 * 1024, Time: 1, Threads: 1})
		if err := h.store.CreateAccount(context.Background(), &identity.Account{Kind: identity.Person, Email: "lost@example.com", PasswordHash: hash}); err != nil {
			t.Fatal(err)
		}
		h.post(t, "/forgot", url.Values{"email": {"lost@example.com"}})
		path := regexp.MustCompile(`/reset\?token=[A-Za-z0-9_-]+`).FindString(h.mailWith(t, "/reset?token=").Text)
		res, page := h.get(t, path)
		if res.StatusCode != 200 || !strings.Contains(page, "never resets your sign-in by email alone") || strings.Contains(page, `action="/reset"`) {
			t.Errorf("no-factor page: %d", res.StatusCode)
		}
	})
}

// Requests with a session are labelled by their route pattern in logs and
// metrics, as signed-out ones are (the session lookup passes a copy of the
// request inward, which once hid the pattern: every signed-in request was
// "unmatched").
func TestSignedInRequestsAreLabelledByRoute(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := newAuthHarness(t, db)
		h.signIn(t, "route@example.com")
		if res, _ := h.get(t, "/account/security"); res.StatusCode != 200 {
			t.Fatalf("account security: %d", res.StatusCode)
		}
		rec := httptest.NewRecorder()
		h.ts.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		m := grep(rec.Body.String(), "carefront_http_requests_total")
		if !strings.Contains(m, `route="GET /account/security"`) || !strings.Contains(m, `route="POST /signin/verify"`) {
			t.Errorf("signed-in requests are not labelled by route:\n%s", m)
		}
	})
}

// brokenBody yields part of a form and then fails, as a client that goes
// away mid-request does.
type brokenBody struct{ sent bool }

func (b *brokenBody) Read(p []byte) (int, error) {
	if b.sent {
		return 0, io.ErrUnexpectedEOF
	}
	b.sent = true
	return copy(p, "email=ana%40exa"), nil
}

// A sign-in form that does not arrive whole is refused before any attempt
// is made or counted (half an email address once made an attempt).
func TestFormThatDidNotArriveWholeIsRefused(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := newAuthHarness(t, db)
		r := httptest.NewRequest("POST", "/signin", &brokenBody{})
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ts.ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest {
			t.Errorf("POST /signin with a broken body = %d, want 400", w.Code)
		}
		var n int
		db.Read(context.Background(), func(tx *sqldb.Tx) error {
			return tx.QueryRow(context.Background(), "SELECT COUNT(*) FROM audit_event WHERE type_code = ?", "http://dicom.nema.org/resources/ontology/DCM|110114").Scan(&n)
		})
		if n != 0 {
			t.Errorf("%d authentication records for a form that never arrived, want 0", n)
		}
	})
}

// failingMail is a mail relay that is down.
type failingMail struct{}

func (failingMail) Send(context.Context, notify.Message) error {
	return errors.New("smtp DATA: the server answered 451")
}

// Forgot-password does the same for every address, even with the mail relay
// down: the same status, cookie and page, one queued job and one audit
// record each, and no mail server in the request's path (it once answered
// 500 for known addresses when the relay was down, 200 for unknown ones).
func TestForgotPasswordDoesTheSameForEveryAddress(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := newAuthHarness(t, db)
		h.signIn(t, "ana@example.com")
		h.post(t, "/signout", nil)
		h.auth.Mail = failingMail{}
		h.mail(t) // the sign-in's own mail is out of the way
		count := func(q string) int {
			var n int
			db.Read(context.Background(), func(tx *sqldb.Tx) error { return tx.QueryRow(context.Background(), q).Scan(&n) })
			return n
		}
		type answer struct {
			status       int
			cookie, page string
			jobs, audits int
		}
		ask := func(email string) answer {
			jobs0, audits0 := count("SELECT COUNT(*) FROM river_job"), count("SELECT COUNT(*) FROM audit_event")
			res, page := h.post(t, "/forgot", url.Values{"email": {email}})
			c := res.Header.Get("Set-Cookie")
			c = regexp.MustCompile(`=[^;]+;`).ReplaceAllString(c, "=VALUE;")
			main := regexp.MustCompile(`(?s)<main.*</main>`).FindString(page)
			return answer{res.StatusCode, c, strings.ReplaceAll(main, email, "ADDRESS"),
				count("SELECT COUNT(*) FROM river_job") - jobs0, count("SELECT COUNT(*) FROM audit_event") - audits0}
		}
		known, unknown, variant := ask("ana@example.com"), ask("nobody@example.com"), ask("NOBODY2@Example.com")
		if known.status != 200 || known.cookie == "" || known.jobs != 1 || known.audits != 1 {
			t.Errorf("known address: %+v", known)
		}
		for _, a := range []answer{unknown, variant} {
			if a != known {
				t.Errorf("an unknown address answers %+v, the known one %+v", a, known)
			}
		}
	})
}

// An emailed code signs in (the weaker way) but never counts as a step-up:
// password and mailbox alone cannot replace factors, the email address or
// the password.
func TestEmailedCodeNeverStepsUp(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := newAuthHarness(t, db)
		h.signIn(t, "ana@example.com")
		h.post(t, "/signout", nil)
		h.clock.Add(time.Minute)
		if res, _ := h.post(t, "/signin", url.Values{"email": {"ana@example.com"}, "password": {"a long enough passphrase"}}); res.StatusCode != 303 {
			t.Fatalf("password: %d", res.StatusCode)
		}
		h.post(t, "/signin/email-code", nil)
		code := regexp.MustCompile(`code is (\d{6})\.`).FindStringSubmatch(h.mailWith(t, "code is").Text)
		if res, _ := h.post(t, "/signin/verify", url.Values{"code": {code[1]}}); res.StatusCode != 303 {
			t.Fatalf("sign-in with the emailed code: %d", res.StatusCode)
		}
		// Signed in, and at once asked to step up for a sensitive page.
		if res, _ := h.get(t, "/account/security"); res.StatusCode != 200 {
			t.Fatalf("account security: %d", res.StatusCode)
		}
		res, _ := h.get(t, "/account/password")
		if res.StatusCode != 303 || !strings.HasPrefix(res.Header.Get("Location"), "/signin/verify?return=") {
			t.Fatalf("change password right after an emailed code: %d %s, want a step-up", res.StatusCode, res.Header.Get("Location"))
		}
		_, page := h.get(t, "/signin/verify?return=%2Faccount%2Fpassword")
		if strings.Contains(page, `action="/signin/email-code`) {
			t.Error("the step-up page offers an emailed code")
		}
		// A new emailed code does not pass the step-up, in place or on the page.
		h.clock.Add(time.Minute)
		h.post(t, "/signin/email-code", nil)
		code = regexp.MustCompile(`code is (\d{6})\.`).FindStringSubmatch(h.mailWith(t, "code is").Text)
		if code != nil {
			if res, _ := h.post(t, "/signin/verify?return=%2Faccount%2Fpassword", url.Values{"code": {code[1]}}); res.StatusCode != http.StatusUnauthorized {
				t.Errorf("step-up with an emailed code: %d, want 401", res.StatusCode)
			}
		}
		res, _ = h.post(t, "/account/email", url.Values{"email": {"mallory@example.org"}, "stepup_code": {"123456"}})
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("email change with a code in place: %d, want the step-up again", res.StatusCode)
		}
		// The authenticator app does.
		h.clock.Add(30 * time.Second)
		if res, _ := h.post(t, "/signin/verify?return=%2Faccount%2Fpassword", url.Values{"code": {totpCode(t, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", h.clock.Now())}}); res.StatusCode != 303 {
			t.Fatalf("step-up with the authenticator: %d", res.StatusCode)
		}
		if res, _ := h.get(t, "/account/password"); res.StatusCode != 200 {
			t.Errorf("after a real step-up: %d", res.StatusCode)
		}
	})
}

// The address given at activation is proven before the account can be
// used: until its code is typed, every page sends the person back to that
// step, even after signing in again.
func TestActivationProvesTheEmailAddressFirst(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := newAuthHarness(t, db)
		code, _, err := h.store.Invite(context.Background(), "p1") // a second invitation, used at the end
		if err != nil {
			t.Fatal(err)
		}
		res, _ := h.post(t, "/activate", activation(h.code, "2", "a long enough passphrase"))
		if res.StatusCode != 303 || res.Header.Get("Location") != "/activate/email" {
			t.Fatalf("activation: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		first := regexp.MustCompile(`\b\d{6}\b`).FindString(h.mailWith(t, "finish setting up").Text)
		for _, p := range []string{"/mfa/setup", "/signin/verify", "/account/security"} {
			if res, _ := h.get(t, p); res.StatusCode != 303 || res.Header.Get("Location") != "/activate/email" {
				t.Errorf("GET %s before the address is proven: %d %s", p, res.StatusCode, res.Header.Get("Location"))
			}
		}
		// Nor can a passkey be added first (it would make the session
		// two-factor with the address unproven).
		h.withPasskeys(t)
		if status, out := h.postJSON(t, "/account/passkeys/options", nil); status != http.StatusForbidden || str(out, "stepUp") != "/activate/email" {
			t.Errorf("adding a passkey before the address is proven: %d %v", status, out)
		}
		if _, page := h.get(t, "/activate/email"); !strings.Contains(page, "ana@example.com") {
			t.Error("the page does not say where the code went")
		}
		wrong := "000000"
		if first == wrong {
			wrong = "111111"
		}
		if res, page := h.post(t, "/activate/email", url.Values{"code": {wrong}}); res.StatusCode != 422 || !strings.Contains(page, `id="code-error"`) {
			t.Errorf("a wrong code: %d", res.StatusCode)
		}
		// Signing in again: a new code, the old one is worth nothing.
		h.post(t, "/signout", nil)
		res, _ = h.post(t, "/signin", url.Values{"email": {"ana@example.com"}, "password": {"a long enough passphrase"}})
		if res.StatusCode != 303 || res.Header.Get("Location") != "/activate/email" {
			t.Fatalf("sign-in of an unproven account: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		var second string
		for _, m := range h.mail(t) {
			if c := regexp.MustCompile(`\b\d{6}\b`).FindString(m.Text); c != "" && c != first && strings.Contains(m.Text, "finish setting up") {
				second = c
				break
			}
		}
		if second == "" {
			t.Fatal("no new code after signing in again")
		}
		if res, _ := h.post(t, "/activate/email", url.Values{"code": {first}}); res.StatusCode != 422 {
			t.Errorf("the first code after a new one was sent: %d", res.StatusCode)
		}
		if res, _ := h.post(t, "/activate/email", url.Values{"code": {second}}); res.StatusCode != 303 || res.Header.Get("Location") != "/mfa/setup" {
			t.Fatalf("the right code: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		if res, _ := h.get(t, "/mfa/setup"); res.StatusCode != 200 {
			t.Errorf("setup after the address is proven: %d", res.StatusCode)
		}
		// A second invitation for the same record is refused plainly.
		h.post(t, "/signout", nil)
		form := activation(code, "2", "a long enough passphrase")
		form.Set("email", "ana.two@example.com")
		if res, page := h.post(t, "/activate", form); res.StatusCode != http.StatusConflict || !strings.Contains(page, "This record has a carefront account already") {
			t.Errorf("a second account for the record: %d", res.StatusCode)
		}
	})
}

// The audit trail of sign-in as an auditor reads it: one Login record per
// completed sign-in (the password alone is a step), a distinct failure
// record per failed step, activation and account creation, sent codes, and
// a failed sign-in for an unknown address named by a keyed hash of the
// normalized address, never by what was typed; every record carries the
// request id.
func TestSignInAuditTrail(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := newAuthHarness(t, db)
		form := activation(h.code, "2", "a long enough passphrase")
		form.Set("email", "newbie@example.com")
		h.post(t, "/activate", form)
		h.proveEmail(t, "newbie@example.com")
		h.post(t, "/signout", nil)
		h.post(t, "/activate", form) // the code is spent
		h.signIn(t, "zoe@example.com")
		h.post(t, "/signout", nil)
		h.clock.Add(time.Minute)
		h.post(t, "/signin", url.Values{"email": {"zoe@example.com"}, "password": {"wrong password here"}})
		h.post(t, "/signin", url.Values{"email": {"  Nobody@Example.COM "}, "password": {"wrong password here"}})
		h.post(t, "/signin", url.Values{"email": {"nobody@example.com"}, "password": {"wrong password here"}})
		h.clock.Add(time.Minute)
		h.post(t, "/signin", url.Values{"email": {"zoe@example.com"}, "password": {"a long enough passphrase"}})
		h.post(t, "/signin/verify", url.Values{"code": {"000000"}})
		h.post(t, "/signin/email-code", nil)
		events := audittest.Events(t, db)
		count := func(subtype, outcome, reason string) int {
			n := 0
			for _, ev := range events {
				if strings.Contains(ev, `"code":"`+subtype+`"`) && strings.Contains(ev, `"outcome":"`+outcome+`"`) && strings.Contains(ev, `"outcomeDesc":"`+reason+`"`) {
					n++
				}
			}
			return n
		}
		for _, c := range []struct {
			subtype, outcome, reason string
			want                     int
		}{
			{"account-activation", "0", "account-activated", 1},
			{"account-create", "0", "patient-account", 1},
			{"account-activation", "4", "activation-refused", 1},
			{"account-activation", "0", "email-verified", 1},
			{"110122", "0", "email-verified", 0},
			{"session", "0", "session-started-password", 3},
			{"110122", "0", "session-started-password", 0},
			{"authentication-step", "0", "password-ok", 2},
			{"110122", "0", "password-ok", 0},
			{"110122", "0", "signed-in-totp", 1},
			{"110122", "4", "bad-password", 1},
			{"110122", "4", "unknown-account", 2},
			{"110122", "4", "bad-totp", 1},
			{"authentication-step", "0", "email-code-sent", 1},
		} {
			if got := count(c.subtype, c.outcome, c.reason); got != c.want {
				t.Errorf("%s %s %s: %d records, want %d", c.subtype, c.outcome, c.reason, got, c.want)
			}
		}
		var hashes []string
		hashRE := regexp.MustCompile(`"system":"urn:carefront:email-hmac-sha256","value":"([0-9a-f]{64})"`)
		for _, ev := range events {
			if strings.Contains(ev, "unknown-account") {
				if m := hashRE.FindStringSubmatch(ev); m != nil {
					hashes = append(hashes, m[1])
				}
			}
			if strings.Contains(strings.ToLower(ev), "nobody") || strings.Contains(ev, "zoe@") || strings.Contains(ev, "newbie@") {
				t.Errorf("a record holds an address: %s", ev)
			}
			if !strings.Contains(ev, `"code":"XrequestId"`) && !strings.Contains(ev, `"code":"110120"`) {
				t.Errorf("a record has no request id: %s", ev)
			}
		}
		if len(hashes) != 2 || hashes[0] != hashes[1] {
			t.Errorf("unknown-address requestors %v: want one keyed hash for both spellings", hashes)
		}
	})
}
