package web

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"carefront/internal/audit/audittest"
	"carefront/internal/clinical/store"
	"carefront/internal/demo"
	"carefront/internal/fhirapi"
	"carefront/internal/identity"
	"carefront/internal/oauth"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// appFixture is a record harness serving SMART apps, with one app
// registered (a public one, as a phone app would be).
type appFixture struct {
	*authHarness
	app     *oauth.Client
	server  *oauth.Server
	flow    *oauth.Flow
	clients *oauth.Clients
}

const (
	appRedirect = "https://diary.example/cb"
	appVerifier = "a-pkce-verifier-of-more-than-forty-three-characters-0123456789"
)

func withApps(t *testing.T, db *sqldb.DB, fx *appFixture) func(*Options) {
	return func(o *Options) {
		sk, err := seal.Generate()
		if err != nil {
			t.Fatal(err)
		}
		aw := o.Auth.Audit
		flow := &oauth.Flow{DB: db, Audit: aw, Store: store.New(db), Notices: o.Auth}
		clients := &oauth.Clients{DB: db, Audit: aw}
		s, h, err := oauth.New(oauth.Options{Issuer: o.BaseURL, Flow: flow, Clients: clients, Keys: &oauth.Keys{DB: db, Seal: sk},
			LoginPath: oauth.PathConsent})
		if err != nil {
			t.Fatal(err)
		}
		o.Apps = &Apps{OAuth: h, Flow: flow, Clients: clients, Callback: s.AuthCallback, FHIRBase: s.FHIRBase(), Server: s,
			FHIR: &fhirapi.Handler{Flow: flow, Gateway: o.Clinical, Clients: clients, Base: s.FHIRBase()}}
		o.AccessLog.AppName = clients.Name
		app, _, err := clients.Add(context.Background(), oauth.NewClient{Name: "Health Diary", Kind: oauth.KindPublic,
			RedirectURIs: []string{appRedirect}, Reviewed: true, By: "test"})
		if err != nil {
			t.Fatal(err)
		}
		fx.app, fx.server, fx.flow, fx.clients = app, s, flow, clients
	}
}

func appHarness(t *testing.T, db *sqldb.DB, mods ...func(*Options)) *appFixture {
	t.Helper()
	fx := &appFixture{}
	fx.authHarness = newAuthHarness(t, db, append([]func(*Options){withRecords(t, db), withApps(t, db, fx)}, mods...)...)
	fx.account(t, "maria@example.com", identity.Person, demo.Maria, "")
	return fx
}

// authorize starts an app's request as the app's page would, and returns
// where the portal sends the browser.
func (fx *appFixture) authorize(t *testing.T, scope string) *url.URL {
	t.Helper()
	h := sha256.Sum256([]byte(appVerifier))
	q := url.Values{"response_type": {"code"}, "client_id": {fx.app.ID}, "redirect_uri": {appRedirect}, "scope": {scope},
		"state": {"st-1"}, "nonce": {"n-1"}, "aud": {fx.server.FHIRBase()},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(h[:])}, "code_challenge_method": {"S256"}}
	res, _ := fx.get(t, "/oauth/authorize?"+q.Encode())
	loc, err := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || err != nil || loc.Path != oauth.PathConsent || loc.Query().Get("request") == "" {
		t.Fatalf("authorize: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	return loc
}

// exchange follows an approval to the app and trades its code for tokens.
func (fx *appFixture) exchange(t *testing.T, res *http.Response) map[string]any {
	t.Helper()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("approval answered %d", res.StatusCode)
	}
	cb, err := fx.client.Get(res.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	cb.Body.Close()
	back, _ := url.Parse(cb.Header.Get("Location"))
	if cb.StatusCode != http.StatusFound || !strings.HasPrefix(back.String(), appRedirect+"?") || back.Query().Get("state") != "st-1" || back.Query().Get("code") == "" {
		t.Fatalf("callback: %d to %q", cb.StatusCode, cb.Header.Get("Location"))
	}
	tr, body := fx.post(t, oauth.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")},
		"redirect_uri": {appRedirect}, "client_id": {fx.app.ID}, "code_verifier": {appVerifier}})
	var tok map[string]any
	if tr.StatusCode != 200 || json.Unmarshal([]byte(body), &tok) != nil || tok["access_token"] == nil {
		t.Fatalf("token: %d %s", tr.StatusCode, body)
	}
	return tok
}

// fhirGet calls the FHIR API as the app, with its access token.
func (fx *appFixture) fhirGet(t *testing.T, token, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, fx.srv.URL+oauth.PathFHIR+"/"+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := fx.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestConnectAnAppAndDisconnectIt: Maria, signed in, is asked by a
// reviewed app for her whole record; the screen names the app, groups
// what it asks for by kind of data, each ticked; she unticks all but her
// profile and results and allows it. The app gets a code at its redirect
// URI (state kept), trades it for tokens naming her record, reads her
// results and is refused her medicines (403, never an empty Bundle) and
// Walter's record (404). The grant is a Consent in her record; she is
// told without PHI that an app was connected; the Sharing page counts
// it; the connected apps page lists it with what it reads and when it
// was last used; the access log names the app. She disconnects it: the
// very next request with the access token fails, and so does a refresh.
func TestConnectAnAppAndDisconnectIt(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		fx := appHarness(t, db)
		fx.signIn(t, "maria@example.com")
		loc := fx.authorize(t, "openid fhirUser launch/patient offline_access patient/*.rs")
		res, page := fx.get(t, loc.RequestURI())
		if res.StatusCode != 200 {
			t.Fatalf("authorization screen: %d", res.StatusCode)
		}
		for _, want := range []string{"Health Diary wants to see your health record", "Reviewed by your clinic", "diary.example",
			`value="results" checked`, `value="medications" checked`, `value="profile" checked`, "Until you disconnect it"} {
			if !strings.Contains(page, want) {
				t.Errorf("the screen lacks %q", want)
			}
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://diary.example;") {
			t.Errorf("the screen's form-action does not allow the way back to the app: %s", csp)
		}
		res, _ = fx.post(t, loc.RequestURI(), url.Values{"for": {demo.Maria}, "kind": {"profile", "results"}, "decision": {"allow"}})
		tok := fx.exchange(t, res)
		if tok["patient"] != demo.Maria || tok["refresh_token"] == nil {
			t.Fatalf("token response: patient %v, refresh %v", tok["patient"], tok["refresh_token"] != nil)
		}
		for _, sc := range strings.Fields(tok["scope"].(string)) {
			if strings.HasPrefix(sc, "patient/") && !regexp.MustCompile(`^patient/(Patient|RelatedPerson|Coverage|Observation|DiagnosticReport|Specimen|ServiceRequest)\.rs$`).MatchString(sc) {
				t.Errorf("granted %s, which she unticked", sc)
			}
		}
		access := tok["access_token"].(string)
		if code, body := fx.fhirGet(t, access, "Observation?patient="+demo.Maria+"&code=4548-4"); code != 200 || !strings.Contains(body, "4548-4") {
			t.Errorf("her A1c results: %d %.600s", code, body)
		}
		if code, body := fx.fhirGet(t, access, "MedicationRequest?patient="+demo.Maria); code != 403 || !strings.Contains(body, "OperationOutcome") {
			t.Errorf("her medicines, unticked: %d, want 403 with an OperationOutcome", code)
		}
		if code, _ := fx.fhirGet(t, access, "Patient/"+demo.Walter); code != 404 {
			t.Errorf("Walter's record: %d, want 404", code)
		}

		ctx := context.Background()
		gs, err := fx.flow.Grants(ctx, demo.Maria)
		if err != nil || len(gs) != 1 {
			t.Fatalf("grants: %v %d", err, len(gs))
		}
		rec, err := store.New(db).Read(ctx, "Consent", oauth.ConsentID(gs[0].ID))
		if err != nil || !strings.Contains(string(rec.Raw), `"status":"active"`) || !strings.Contains(string(rec.Raw), "Device/"+fx.app.ID) {
			t.Fatalf("the grant's Consent: %v %s", err, rec.Raw)
		}
		m := fx.mailWith(t, "An app was connected")
		if m.To != "maria@example.com" || strings.Contains(m.Text, "Health Diary") || strings.Contains(m.Text, "Maria") {
			t.Errorf("connected notice to %s: %q", m.To, m.Text)
		}
		if _, page := fx.get(t, "/sharing"); !strings.Contains(page, "Apps connected to your record now: 1.") || !strings.Contains(page, "Health Diary: connected on") {
			t.Error("the sharing page does not count and name the app")
		}
		_, page = fx.get(t, "/sharing/apps")
		for _, want := range []string{"Health Diary", "Profile and insurance, Test results and vital signs", "Connected by", "You", "Disconnect"} {
			if !strings.Contains(page, want) {
				t.Errorf("the connected apps page lacks %q", want)
			}
		}
		if strings.Contains(page, "Not yet") {
			t.Error("the connected apps page says the app was never used")
		}
		if _, log := fx.get(t, "/api/views/access-log"); !strings.Contains(log, `"who":"app","name":"Health Diary","by":"you"`) {
			t.Errorf("the access log does not name the app: %.400s", log)
		}

		res, _ = fx.post(t, "/sharing/apps/disconnect", url.Values{"grant": {gs[0].ID}})
		if res.StatusCode != 303 || res.Header.Get("Location") != "/sharing/apps?done=disconnected" {
			t.Fatalf("disconnect: %d to %q", res.StatusCode, res.Header.Get("Location"))
		}
		if code, _ := fx.fhirGet(t, access, "Observation?patient="+demo.Maria); code != 401 {
			t.Errorf("the access token after disconnecting: %d, want 401", code)
		}
		rr, body := fx.post(t, oauth.PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}, "client_id": {fx.app.ID}})
		if rr.StatusCode != 400 || !strings.Contains(body, "invalid_grant") {
			t.Errorf("refresh after disconnecting: %d %s", rr.StatusCode, body)
		}
		if rec, _ := store.New(db).Read(ctx, "Consent", oauth.ConsentID(gs[0].ID)); rec == nil || !strings.Contains(string(rec.Raw), `"status":"inactive"`) {
			t.Error("the grant's Consent is still active")
		}
		if _, page := fx.get(t, "/sharing/apps"); !strings.Contains(page, "Earlier connections") || !strings.Contains(page, "Disconnected on") {
			t.Error("the disconnected app is not in the history")
		}
		if _, page := fx.get(t, "/sharing"); !strings.Contains(page, "Health Diary: disconnected on") || !strings.Contains(page, "No apps are connected to your record.") {
			t.Error("the sharing page does not show the disconnection")
		}
		fx.mailWith(t, "An app was disconnected")
		// Disconnecting twice, or another record's grant, changes nothing.
		if res, _ := fx.post(t, "/sharing/apps/disconnect", url.Values{"grant": {gs[0].ID}}); res.StatusCode != 404 {
			t.Errorf("disconnecting again: %d, want 404", res.StatusCode)
		}
		for _, reason := range []string{"app-authorized", "app-disconnected"} {
			found := false
			for _, e := range audittest.Events(t, db) {
				found = found || strings.Contains(e, reason) && strings.Contains(e, fx.app.ID) && strings.Contains(e, "Consent/app-")
			}
			if !found {
				t.Errorf("no audit record of %s naming the app and its Consent", reason)
			}
		}
	})
}

// TestDenyingAnAppTellsItSo: Deny sends the browser back to the app with
// access_denied and its state, and nothing is granted; the request
// cannot be answered again.
func TestDenyingAnAppTellsItSo(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		fx := appHarness(t, db)
		fx.signIn(t, "maria@example.com")
		loc := fx.authorize(t, "openid fhirUser launch/patient patient/Observation.rs")
		res, _ := fx.post(t, loc.RequestURI(), url.Values{"for": {demo.Maria}, "kind": {"results"}, "decision": {"deny"}})
		back, _ := url.Parse(res.Header.Get("Location"))
		if res.StatusCode != 303 || !strings.HasPrefix(back.String(), appRedirect+"?") || back.Query().Get("error") != "access_denied" || back.Query().Get("state") != "st-1" {
			t.Fatalf("deny: %d to %q", res.StatusCode, res.Header.Get("Location"))
		}
		if gs, _ := fx.flow.Grants(context.Background(), demo.Maria); len(gs) != 0 {
			t.Errorf("a denial granted %d", len(gs))
		}
		if res, _ := fx.post(t, loc.RequestURI(), url.Values{"for": {demo.Maria}, "kind": {"results"}, "decision": {"allow"}}); res.StatusCode != 404 {
			t.Errorf("allowing a denied request: %d, want 404", res.StatusCode)
		}
	})
}

// TestAppSignInComesBackToTheScreen: a person not signed in is sent to
// sign in and, after both steps, lands back on the app's screen; a
// second factor older than the step-up age is asked again first. Bad
// requests (unknown, made up) get an error page, never a redirect.
func TestAppSignInComesBackToTheScreen(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		fx := appHarness(t, db)
		loc := fx.authorize(t, "openid fhirUser launch/patient patient/Observation.rs")
		res, _ := fx.get(t, loc.RequestURI())
		to, _ := url.Parse(res.Header.Get("Location"))
		if res.StatusCode != 303 || to.Path != "/signin" || to.Query().Get("return") != loc.RequestURI() {
			t.Fatalf("signed out: %d to %q", res.StatusCode, res.Header.Get("Location"))
		}
		if _, page := fx.get(t, to.RequestURI()); !strings.Contains(page, `action="/signin?return=`) {
			t.Error("the sign-in form does not carry the way back")
		}
		res, _ = fx.post(t, to.RequestURI(), url.Values{"email": {"maria@example.com"}, "password": {"a long enough passphrase"}})
		to, _ = url.Parse(res.Header.Get("Location"))
		if res.StatusCode != 303 || to.Path != "/signin/verify" || to.Query().Get("return") != loc.RequestURI() {
			t.Fatalf("after the password: %d to %q", res.StatusCode, res.Header.Get("Location"))
		}
		fx.clock.Add(30 * time.Second)
		res, _ = fx.post(t, to.RequestURI(), url.Values{"code": {totpCode(t, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", fx.clock.Now())}})
		if res.StatusCode != 303 || res.Header.Get("Location") != loc.RequestURI() {
			t.Fatalf("after the second factor: %d to %q", res.StatusCode, res.Header.Get("Location"))
		}
		if res, page := fx.get(t, loc.RequestURI()); res.StatusCode != 200 || !strings.Contains(page, "Health Diary") {
			t.Fatalf("the screen after signing in: %d", res.StatusCode)
		}
		fx.clock.Add(StepUpAge + time.Minute)
		res, _ = fx.get(t, loc.RequestURI())
		if to, _ := url.Parse(res.Header.Get("Location")); res.StatusCode != 303 || to.Path != "/signin/verify" {
			t.Errorf("an old second factor: %d to %q, want the step-up", res.StatusCode, res.Header.Get("Location"))
		}
		for _, bad := range []string{oauth.PathConsent, oauth.PathConsent + "?request=made-up"} {
			if res, _ := fx.get(t, bad); res.StatusCode != 404 || res.Header.Get("Location") != "" {
				t.Errorf("GET %s = %d to %q, want an error page", bad, res.StatusCode, res.Header.Get("Location"))
			}
		}
	})
}

// TestCaregiverConnectsAnAppWithinTheirGrant: Linda holds Walter's
// medicines and visits. Asked for everything, the screen names his
// record, offers what her grant covers and shows the rest as not hers to
// share; whatever she posts, the app gets only what her grant covers,
// with her RelatedPerson as its fhirUser; Walter is told an app was
// connected to his record. A record she holds nothing of is refused.
func TestCaregiverConnectsAnAppWithinTheirGrant(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		fx := appHarness(t, db)
		fx.account(t, "linda@example.com", identity.Person, "", "")
		fx.account(t, "walter@example.com", identity.Person, demo.Walter, "")
		g := fx.grant(t, demo.Walter, "linda@example.com", "medications-visits")
		fx.signIn(t, "linda@example.com")
		loc := fx.authorize(t, "openid fhirUser launch/patient offline_access patient/*.rs")
		res, page := fx.get(t, loc.RequestURI())
		if res.StatusCode != 200 || !strings.Contains(page, "from Walter Brooks-Demo&#39;s record") {
			t.Fatalf("screen for Linda: %d", res.StatusCode)
		}
		if !strings.Contains(page, `value="medications" checked`) || !strings.Contains(page, `value="results" disabled`) {
			t.Error("the screen does not limit Linda to her grant")
		}
		if res, _ := fx.post(t, loc.RequestURI(), url.Values{"for": {demo.Maria}, "kind": {"results"}, "decision": {"allow"}}); res.StatusCode != 403 {
			t.Errorf("an app for Maria's record, by Linda: %d, want 403", res.StatusCode)
		}
		res, _ = fx.post(t, loc.RequestURI(), url.Values{"for": {demo.Walter}, "kind": {"medications", "results", "visits"}, "decision": {"allow"}})
		tok := fx.exchange(t, res)
		if tok["patient"] != demo.Walter {
			t.Errorf("patient = %v", tok["patient"])
		}
		if strings.Contains(tok["scope"].(string), "Observation") || !strings.Contains(tok["scope"].(string), "patient/MedicationRequest.rs") {
			t.Errorf("Linda granted %q", tok["scope"])
		}
		access := tok["access_token"].(string)
		if code, _ := fx.fhirGet(t, access, "Observation?patient="+demo.Walter); code != 403 {
			t.Errorf("Walter's results through Linda's app: %d, want 403", code)
		}
		if code, _ := fx.fhirGet(t, access, "MedicationRequest?patient="+demo.Walter); code != 200 {
			t.Errorf("Walter's medicines through Linda's app: %d", code)
		}
		gs, _ := fx.flow.Grants(context.Background(), demo.Walter)
		if len(gs) != 1 || !gs[0].Caregiver || gs[0].FHIRUser != "RelatedPerson/rp-"+strings.TrimPrefix(g.ID, "grant-") {
			t.Fatalf("grant: %+v", gs)
		}
		if m := fx.mailWith(t, "An app was connected"); m.To != "walter@example.com" && m.To != "linda@example.com" {
			t.Errorf("connected notice to %s", m.To)
		}
	})
}

// TestSTU2EHRLaunch: an app the clinic offers opens from the connected
// apps page: the browser goes to its launch URL with iss and a launch
// value; the app's request with the launch scope and that value skips
// "whose record" and connects the record it was opened for. A launch
// value for another app, a made-up one, or one opened by someone else
// is refused; a used one does not work again.
func TestSTU2EHRLaunch(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		fx := appHarness(t, db)
		ctx := context.Background()
		launcher, _, err := fx.clients.Add(ctx, oauth.NewClient{Name: "Med Tracker", Kind: oauth.KindPublic,
			RedirectURIs: []string{appRedirect}, LaunchURL: "https://tracker.example/launch", Reviewed: true, By: "test"})
		if err != nil {
			t.Fatal(err)
		}
		fx.account(t, "walter@example.com", identity.Person, demo.Walter, "")
		fx.signIn(t, "maria@example.com")
		res, page := fx.get(t, "/sharing/apps")
		if !strings.Contains(page, "Apps your clinic offers") || !strings.Contains(page, "Med Tracker") ||
			!strings.Contains(res.Header.Get("Content-Security-Policy"), "form-action 'self' https://tracker.example;") {
			t.Fatal("the connected apps page does not offer the app")
		}
		res, _ = fx.post(t, "/sharing/apps/launch", url.Values{"client": {launcher.ID}})
		to, _ := url.Parse(res.Header.Get("Location"))
		launch := to.Query().Get("launch")
		if res.StatusCode != 303 || to.Host != "tracker.example" || to.Query().Get("iss") != fx.server.FHIRBase() || launch == "" {
			t.Fatalf("open: %d to %q", res.StatusCode, res.Header.Get("Location"))
		}
		if res, _ := fx.post(t, "/sharing/apps/launch", url.Values{"client": {fx.app.ID}}); res.StatusCode != 404 {
			t.Errorf("opening an app with no launch URL: %d, want 404", res.StatusCode)
		}

		start := func(client, value string) *http.Response {
			h := sha256.Sum256([]byte(appVerifier))
			q := url.Values{"response_type": {"code"}, "client_id": {client}, "redirect_uri": {appRedirect}, "scope": {"launch openid fhirUser patient/*.rs"},
				"state": {"st-1"}, "aud": {fx.server.FHIRBase()}, "launch": {value},
				"code_challenge": {base64.RawURLEncoding.EncodeToString(h[:])}, "code_challenge_method": {"S256"}}
			res, _ := fx.get(t, "/oauth/authorize?"+q.Encode())
			return res
		}
		for name, res := range map[string]*http.Response{"another app's launch": start(fx.app.ID, launch), "a made-up launch": start(launcher.ID, "made-up")} {
			back, _ := url.Parse(res.Header.Get("Location"))
			if res.StatusCode != http.StatusFound || back.Query().Get("error") != "invalid_request" {
				t.Errorf("%s: %d to %q", name, res.StatusCode, res.Header.Get("Location"))
			}
		}
		res = start(launcher.ID, launch)
		loc, _ := url.Parse(res.Header.Get("Location"))
		if res.StatusCode != http.StatusFound || loc.Path != oauth.PathConsent {
			t.Fatalf("authorize with the launch: %d to %q", res.StatusCode, res.Header.Get("Location"))
		}
		res, page = fx.get(t, loc.RequestURI())
		if res.StatusCode != 200 || !strings.Contains(page, "Med Tracker wants to see your health record") || strings.Contains(page, "Whose record") {
			t.Fatalf("the screen for a launch: %d", res.StatusCode)
		}
		// Walter cannot answer Maria's launch.
		walter := appHarnessClient(t, fx)
		fx.client, walter = walter, fx.client
		fx.signIn(t, "walter@example.com")
		if res, _ := fx.get(t, loc.RequestURI()); res.StatusCode != 403 {
			t.Errorf("Walter on Maria's launch: %d, want 403", res.StatusCode)
		}
		fx.client = walter
		res, _ = fx.post(t, loc.RequestURI(), url.Values{"for": {demo.Walter}, "kind": {"results"}, "decision": {"allow"}})
		if res.StatusCode != 403 {
			t.Errorf("Maria approving her launch for Walter's record: %d, want 403", res.StatusCode)
		}
		res, _ = fx.post(t, loc.RequestURI(), url.Values{"for": {demo.Maria}, "kind": {"results", "profile"}, "decision": {"allow"}})
		fx.app = launcher // the code is the launched app's
		tok := fx.exchange(t, res)
		if tok["patient"] != demo.Maria {
			t.Errorf("patient = %v", tok["patient"])
		}
		if res := start(launcher.ID, launch); res.StatusCode != http.StatusFound || !strings.Contains(res.Header.Get("Location"), "error=invalid_request") {
			t.Errorf("a used launch: %d to %q", res.StatusCode, res.Header.Get("Location"))
		}
	})
}

// appHarnessClient is a second browser (its own cookies) on fx's server.
func appHarnessClient(t *testing.T, fx *appFixture) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	cl := *fx.srv.Client()
	cl.Jar = jar
	cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cl
}

// TestRPInitiatedLogout: an app sends the person to /oauth/logout with
// the ID token it got; signed in, they confirm, and are signed out and
// sent to the app's registered address with its state. An address the
// app did not register, or a hint carefront did not sign, is an error
// page; signed out, the person goes straight on.
func TestRPInitiatedLogout(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		fx := appHarness(t, db)
		fx.signIn(t, "maria@example.com")
		loc := fx.authorize(t, "openid fhirUser launch/patient patient/Observation.rs")
		res, _ := fx.post(t, loc.RequestURI(), url.Values{"for": {demo.Maria}, "kind": {"results"}, "decision": {"allow"}})
		tok := fx.exchange(t, res)
		hint, _ := tok["id_token"].(string)
		if hint == "" {
			t.Fatal("no ID token")
		}
		q := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {appRedirect}, "state": {"bye"}}
		for name, bad := range map[string]url.Values{
			"an address the app did not register": {"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://evil.example/"}},
			"a forged hint":                       {"id_token_hint": {hint[:len(hint)-4] + "AAAA"}, "post_logout_redirect_uri": {appRedirect}},
			"another app's client_id":             {"id_token_hint": {hint}, "client_id": {"someone-else"}},
		} {
			if res, _ := fx.get(t, oauth.PathLogout+"?"+bad.Encode()); res.StatusCode != 400 || res.Header.Get("Location") != "" {
				t.Errorf("%s: %d to %q", name, res.StatusCode, res.Header.Get("Location"))
			}
		}
		res, page := fx.get(t, oauth.PathLogout+"?"+q.Encode())
		if res.StatusCode != 200 || !strings.Contains(page, "Health Diary asked to sign you out of carefront as well.") {
			t.Fatalf("confirmation: %d", res.StatusCode)
		}
		if res, _ := fx.get(t, "/sharing"); res.StatusCode != 200 {
			t.Fatalf("showing the confirmation signed her out: %d", res.StatusCode)
		}
		res, _ = fx.post(t, oauth.PathLogout, q)
		if res.StatusCode != 303 || res.Header.Get("Location") != appRedirect+"?state=bye" {
			t.Fatalf("logout: %d to %q", res.StatusCode, res.Header.Get("Location"))
		}
		if res, _ := fx.get(t, "/sharing"); res.StatusCode != 303 {
			t.Errorf("after logout /sharing answered %d", res.StatusCode)
		}
		if res, _ := fx.get(t, oauth.PathLogout+"?"+q.Encode()); res.StatusCode != 303 || res.Header.Get("Location") != appRedirect+"?state=bye" {
			t.Errorf("signed out: %d to %q", res.StatusCode, res.Header.Get("Location"))
		}
	})
}

// TestDynamicClientRegistration: off by default (404); on, an app
// registers itself (201, its id, a secret once for a confidential one),
// and the authorization screen says it is not reviewed; bad metadata
// gets RFC 7591's errors and registers nothing.
func TestDynamicClientRegistration(t *testing.T) {
	reg := func(fx *appFixture, body string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, fx.srv.URL+oauth.PathRegister, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := fx.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}
	good := `{"client_name":"Self Registered","redirect_uris":["https://diary.example/cb"],"token_endpoint_auth_method":"none"}`
	t.Run("off", func(t *testing.T) {
		sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
			if status, _ := reg(appHarness(t, db), good); status != 404 {
				t.Errorf("registration while off: %d, want 404", status)
			}
		})
	})
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		fx := appHarness(t, db, func(o *Options) { o.Apps.Registration = true })
		before, _ := fx.clients.List(context.Background())
		for name, body := range map[string]string{
			"not JSON":              `client_name=x`,
			"no redirect URI":       `{"client_name":"x","token_endpoint_auth_method":"none"}`,
			"a script redirect URI": `{"client_name":"x","redirect_uris":["javascript:alert(1)"],"token_endpoint_auth_method":"none"}`,
			"a password grant":      `{"client_name":"x","redirect_uris":["https://x.example/cb"],"grant_types":["password"]}`,
			"an implicit flow":      `{"client_name":"x","redirect_uris":["https://x.example/cb"],"response_types":["token"]}`,
			"an unknown method":     `{"client_name":"x","redirect_uris":["https://x.example/cb"],"token_endpoint_auth_method":"tls_client_auth"}`,
			"no name":               `{"redirect_uris":["https://x.example/cb"],"token_endpoint_auth_method":"none"}`,
		} {
			status, out := reg(fx, body)
			if status != 400 || (out["error"] != "invalid_client_metadata" && out["error"] != "invalid_redirect_uri") {
				t.Errorf("%s: %d %v", name, status, out)
			}
		}
		if status, out := reg(fx, `{"client_name":"x","redirect_uris":["javascript:alert(1)"],"token_endpoint_auth_method":"none"}`); out["error"] != "invalid_redirect_uri" {
			t.Errorf("a script redirect URI: %d %v, want invalid_redirect_uri", status, out)
		}
		if after, _ := fx.clients.List(context.Background()); len(after) != len(before) {
			t.Fatalf("bad registrations registered %d apps", len(after)-len(before))
		}
		status, out := reg(fx, `{"client_name":"Self Registered","redirect_uris":["https://diary.example/cb"]}`)
		if status != 201 || out["client_id"] == nil || out["client_secret"] == nil || out["token_endpoint_auth_method"] != "client_secret_basic" {
			t.Fatalf("a confidential registration: %d %v", status, out)
		}
		status, out = reg(fx, good)
		if status != 201 || out["client_id"] == nil || out["client_secret"] != nil {
			t.Fatalf("a public registration: %d %v", status, out)
		}
		c, err := fx.clients.Get(context.Background(), out["client_id"].(string))
		if err != nil || c.Reviewed || c.CreatedBy != "dynamic-registration" {
			t.Fatalf("registered: %v %+v", err, c)
		}
		fx.app = c
		fx.signIn(t, "maria@example.com")
		loc := fx.authorize(t, "openid fhirUser launch/patient patient/Observation.rs")
		if _, page := fx.get(t, loc.RequestURI()); !strings.Contains(page, "Not reviewed by your clinic") || !strings.Contains(page, "Connect it only if you trust") {
			t.Error("the screen does not say the app is not reviewed")
		}
		// Its logout never leads off carefront: a self-registered app could
		// name any site as its redirect URI.
		lo := url.Values{"client_id": {c.ID}, "post_logout_redirect_uri": {"https://diary.example/cb"}}
		if res, _ := fx.post(t, oauth.PathLogout, lo); res.StatusCode != 303 || res.Header.Get("Location") != "/" {
			t.Errorf("logout for an unreviewed app: %d to %q, want /", res.StatusCode, res.Header.Get("Location"))
		}
	})
}

// TestStepUpOnTheScreenGoesOn: a person whose second factor grew old
// while the screen was open confirms it in place, and the answer goes
// on with what they ticked; the confirmation page lets the answer lead
// on to the app.
func TestStepUpOnTheScreenGoesOn(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		fx := appHarness(t, db)
		fx.signIn(t, "maria@example.com")
		loc := fx.authorize(t, "openid fhirUser launch/patient patient/*.rs")
		_, page := fx.get(t, loc.RequestURI())
		if !strings.Contains(page, `name="request" value="`+loc.Query().Get("request")+`"`) {
			t.Fatal("the form does not carry the request")
		}
		fx.clock.Add(StepUpAge + time.Minute)
		form := url.Values{"request": {loc.Query().Get("request")}, "for": {demo.Maria}, "kind": {"results"}, "decision": {"allow"}}
		res, page := fx.post(t, loc.RequestURI(), form)
		if res.StatusCode != 401 || !strings.Contains(page, `name="stepup_code"`) || !strings.Contains(res.Header.Get("Content-Security-Policy"), "form-action 'self' https://diary.example;") {
			t.Fatalf("an old second factor: %d", res.StatusCode)
		}
		fx.clock.Add(30 * time.Second)
		form.Set("stepup_code", totpCode(t, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", fx.clock.Now()))
		res, _ = fx.post(t, oauth.PathConsent, form) // the step-up form posts to the path, the fields carried
		tok := fx.exchange(t, res)
		if !strings.Contains(tok["scope"].(string), "patient/Observation.rs") || strings.Contains(tok["scope"].(string), "MedicationRequest") {
			t.Errorf("granted %q", tok["scope"])
		}
	})
}
