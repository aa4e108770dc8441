package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pquerna/otp/totp"

	"carefront/internal/demo"
)

// TestTwoInstancesAgreeOnAccess runs two carefront servers on one
// PostgreSQL database, as behind a load balancer: a person signed in
// through one is signed in at the other; a release choice saved through
// one applies at the other's very next request, even to its cached home
// view; signing out through one ends the session at the other.
func TestTwoInstancesAgreeOnAccess(t *testing.T) {
	env := dialectEnv(t, "postgres")
	one, _, _ := serve(t, []string{"--demo"}, env)
	two, _, _ := serve(t, []string{"--demo"}, env)
	jar, _ := cookiejar.New(nil) // cookies are per host: both instances get them
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(base, path string, form url.Values) *http.Response {
		t.Helper()
		res, err := c.PostForm(base+strings.TrimPrefix(path, "/"), form)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	view := func(base, name string, v any) int {
		t.Helper()
		res, err := c.Get(base + "api/views/" + name)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode == 200 {
			if err := json.NewDecoder(res.Body).Decode(v); err != nil {
				t.Fatal(err)
			}
		}
		return res.StatusCode
	}

	if res := post(one, "/signin", url.Values{"email": {"maria@demo.carefront.example"}, "password": {demo.DemoPassword}}); res.StatusCode != 303 {
		t.Fatalf("sign-in at one: %d", res.StatusCode)
	}
	code, err := totp.GenerateCode(demo.DemoTOTPSecret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res := post(one, "/signin/verify", url.Values{"code": {code}}); res.StatusCode != 303 {
		t.Fatalf("second step at one: %d", res.StatusCode)
	}

	var results struct{ Held []json.RawMessage }
	var home struct{ HeldResults int }
	if s := view(two, "results", &results); s != 200 || len(results.Held) != 0 {
		t.Fatalf("results at two: %d, %d held", s, len(results.Held))
	}
	if s := view(two, "home", &home); s != 200 || home.HeldResults != 0 {
		t.Fatalf("home at two: %d, %d held", s, home.HeldResults)
	}

	start := time.Now()
	if res := post(one, "/settings/results", url.Values{"wait-lab": {"30"}}); res.StatusCode != 303 {
		t.Fatalf("release choice at one: %d", res.StatusCode)
	}
	if s := view(two, "home", &home); s != 200 || home.HeldResults == 0 {
		t.Errorf("two's next home (cached before) holds %d results, want the newest panel held", home.HeldResults)
	}
	if s := view(two, "results", &results); s != 200 || len(results.Held) == 0 {
		t.Errorf("two's next results view holds %d, want the newest panel held", len(results.Held))
	}
	t.Logf("a choice saved at one applied at two's next request, %v later", time.Since(start))

	if res := post(one, "/signout", nil); res.StatusCode != 303 {
		t.Fatalf("sign-out at one: %d", res.StatusCode)
	}
	if s := view(two, "home", &home); s != 401 {
		t.Errorf("home at two after signing out at one: %d, want 401", s)
	}
}

// TestTwoInstancesRevokeCaregiver: Linda reads her father's medicines
// through one instance; Walter stops her access through the other; her
// very next request at the first is refused, her session still valid.
func TestTwoInstancesRevokeCaregiver(t *testing.T) {
	env := dialectEnv(t, "postgres")
	one, _, _ := serve(t, []string{"--demo"}, env)
	two, _, _ := serve(t, []string{"--demo"}, env)
	linda, walter := newBrowser(t), newBrowser(t)
	linda.signIn(one, "linda@demo.carefront.example")
	if s, body := linda.get(one + "api/views/medications?for=demo-walter"); s != 200 || !strings.Contains(body, "apixaban") {
		t.Fatalf("Linda's view of Walter's medicines at one: %d", s)
	}
	walter.signIn(two, "walter@demo.carefront.example")
	_, page := walter.get(two + "sharing")
	i := strings.Index(page, `name="grant" value="`)
	if i < 0 {
		t.Fatal("no grant on Walter's sharing page")
	}
	id := page[i+len(`name="grant" value="`):]
	id = id[:strings.IndexByte(id, '"')]
	start := time.Now()
	res, err := walter.c.PostForm(two+"sharing/caregivers/revoke", url.Values{"grant": {id}})
	if err != nil || res.StatusCode != 303 {
		t.Fatalf("revoke at two: %v %v", res, err)
	}
	res.Body.Close()
	if s, body := linda.get(one + "api/views/medications?for=demo-walter"); s != 403 || strings.Contains(body, "apixaban") {
		t.Errorf("Linda's next request at one after the revocation at two: %d", s)
	}
	t.Logf("revoked at two, refused at one's next request %v later", time.Since(start))
	if s, _ := linda.get(one + "account/security"); s != 200 {
		t.Errorf("Linda's own session ended: %d", s)
	}
}

// TestTwoInstancesShareApps: behind a load balancer (one base URL, two
// instances on one PostgreSQL), an app authorized through one instance
// trades its code and reads through the other; Maria disconnects it at
// the first and the app's very next request at the second fails, as
// does its refresh.
func TestTwoInstancesShareApps(t *testing.T) {
	const base = "http://portal.test"
	env := dialectEnv(t, "postgres", "CAREFRONT_BASE_URL", base)
	// Each instance's own address, as the load balancer reaches it.
	addr := func(out *syncBuffer) string {
		m := regexp.MustCompile(`"listen":"([^"]+)"`).FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("no listen address in:\n%s", out)
		}
		return "http://" + m[1] + "/"
	}
	_, outOne, _ := serve(t, []string{"--demo"}, env)
	_, outTwo, _ := serve(t, []string{"--demo"}, env)
	one, two := addr(outOne), addr(outTwo)
	var out strings.Builder
	if err := run(context.Background(), []string{"carefront", "clients", "add", "--name", "Health Diary", "--public", "--redirect-uri", "https://diary.example/cb"}, envOf(env), &out); err != nil {
		t.Fatal(err)
	}
	clientID := strings.TrimSpace(strings.TrimPrefix(strings.Split(out.String(), "\n")[0], "client id:"))
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	at := func(inst, u string) string { return inst + strings.TrimPrefix(strings.TrimPrefix(u, base), "/") } // the load balancer
	do := func(req *http.Request) (*http.Response, string) {
		t.Helper()
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	get := func(u string) (*http.Response, string) { req, _ := http.NewRequest("GET", u, nil); return do(req) }
	post := func(u string, form url.Values) (*http.Response, string) {
		req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return do(req)
	}
	if res, _ := post(one+"signin", url.Values{"email": {"maria@demo.carefront.example"}, "password": {demo.DemoPassword}}); res.StatusCode != 303 {
		t.Fatalf("sign-in: %d", res.StatusCode)
	}
	code, _ := totp.GenerateCode(demo.DemoTOTPSecret, time.Now())
	if res, _ := post(one+"signin/verify", url.Values{"code": {code}}); res.StatusCode != 303 {
		t.Fatalf("second step: %d", res.StatusCode)
	}
	h := sha256.Sum256([]byte(appVerifier))
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {"https://diary.example/cb"}, "state": {"s"},
		"scope": {"launch/patient offline_access patient/*.rs"}, "aud": {base + "/fhir/R4"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(h[:])}, "code_challenge_method": {"S256"}}
	res, _ := get(two + "oauth/authorize?" + q.Encode())
	screen := res.Header.Get("Location")
	if res.StatusCode != 302 || !strings.HasPrefix(screen, "/oauth/consent?request=") {
		t.Fatalf("authorize at two: %d to %q", res.StatusCode, screen)
	}
	res, _ = post(at(one, screen), url.Values{"for": {demo.Maria}, "kind": {"results", "profile"}, "decision": {"allow"}})
	if res.StatusCode != 303 {
		t.Fatalf("allow at one: %d", res.StatusCode)
	}
	res, _ = get(at(two, res.Header.Get("Location")))
	back, _ := url.Parse(res.Header.Get("Location"))
	if back.Query().Get("code") == "" {
		t.Fatalf("callback at two: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, body := post(one+"oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")}, "redirect_uri": {"https://diary.example/cb"},
		"client_id": {clientID}, "code_verifier": {appVerifier}})
	var tok map[string]any
	if res.StatusCode != 200 || json.Unmarshal([]byte(body), &tok) != nil {
		t.Fatalf("token at one: %d %s", res.StatusCode, body)
	}
	read := func(inst string) int {
		req, _ := http.NewRequest("GET", inst+"fhir/R4/Observation?patient="+demo.Maria, nil)
		req.Header.Set("Authorization", "Bearer "+tok["access_token"].(string))
		res, _ := do(req)
		return res.StatusCode
	}
	if s := read(two); s != 200 {
		t.Fatalf("read at two: %d", s)
	}
	_, page := get(one + "sharing/apps")
	i := strings.Index(page, `name="grant" value="`)
	if i < 0 {
		t.Fatal("no app on Maria's connected apps page")
	}
	id := page[i+len(`name="grant" value="`):]
	id = id[:strings.IndexByte(id, '"')]
	start := time.Now()
	if res, _ := post(one+"sharing/apps/disconnect", url.Values{"grant": {id}}); res.StatusCode != 303 {
		t.Fatalf("disconnect at one: %d", res.StatusCode)
	}
	if s := read(two); s != 401 {
		t.Errorf("the app's next read at two after disconnecting at one: %d, want 401", s)
	}
	t.Logf("disconnected at one, refused at two's next request %v later", time.Since(start))
	if res, body := post(two+"oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}, "client_id": {clientID}}); res.StatusCode != 400 || !strings.Contains(body, "invalid_grant") {
		t.Errorf("refresh at two after disconnecting: %d %s", res.StatusCode, body)
	}
}

const appVerifier = "a-pkce-verifier-of-more-than-forty-three-characters-0123456789"

// TestTwoInstancesBookAndMessage: Maria at one and Walter at two confirm
// the same free time at the same moment: exactly one visit is booked and
// the other is told the time was taken. Maria's message sent through one
// is in Dr. Patel's inbox at two; her answer from two is in Maria's
// conversation at one.
func TestTwoInstancesBookAndMessage(t *testing.T) {
	env := dialectEnv(t, "postgres")
	one, _, _ := serve(t, []string{"--demo"}, env)
	two, _, _ := serve(t, []string{"--demo"}, env)
	maria, walter, patel := newBrowser(t), newBrowser(t), newBrowser(t)
	maria.signIn(one, "maria@demo.carefront.example")
	walter.signIn(two, "walter@demo.carefront.example")

	_, page := maria.get(one + "visits/book?clinician=demo-dr-nguyen&week=1")
	m := regexp.MustCompile(`href="/visits/book\?slot=(demo-slot-[a-z0-9-]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no free time offered at one:\n%s", page)
	}
	slot := m[1]
	type answer struct {
		who    string
		status int
		page   string
	}
	answers := make(chan answer, 2)
	start := make(chan struct{})
	for _, b := range []struct {
		who  string
		c    *browser
		base string
	}{{"Maria at one", maria, one}, {"Walter at two", walter, two}} {
		go func() {
			<-start
			res, err := b.c.c.PostForm(b.base+"visits/book", url.Values{"slot": {slot}})
			if err != nil {
				answers <- answer{b.who, 0, err.Error()}
				return
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			answers <- answer{b.who, res.StatusCode, string(body)}
		}()
	}
	close(start)
	won, taken := 0, 0
	for range 2 {
		a := <-answers
		switch {
		case a.status == 303:
			won++
		case a.status == 409 && strings.Contains(a.page, "Someone else just booked this time"):
			taken++
		default:
			t.Errorf("%s: %d\n%s", a.who, a.status, a.page)
		}
	}
	if won != 1 || taken != 1 {
		t.Fatalf("%d bookings and %d refusals of one time through two instances; want 1 and 1", won, taken)
	}
	for _, c := range []struct {
		c    *browser
		base string
	}{{maria, one}, {walter, two}} {
		if _, page := c.c.get(c.base + "visits/book?clinician=demo-dr-nguyen&week=1"); strings.Contains(page, "slot="+slot+`"`) {
			t.Errorf("the booked time is still offered at %s", c.base)
		}
	}

	_, page = maria.get(one + "messages/new")
	pm := regexp.MustCompile(`id="pool-([^"]+)"[^>]*>\s*<label[^>]*>Dr\. Patel&#39;s team`).FindStringSubmatch(page)
	if pm == nil {
		t.Fatalf("no Dr. Patel's team to write to:\n%s", page)
	}
	res, _ := maria.post(one+"messages/new", url.Values{"pool": {pm[1]}, "subject": {"Two instances"}, "text": {"Is my A1c back?"}})
	if res.StatusCode != 303 {
		t.Fatalf("sending at one: %d", res.StatusCode)
	}
	thread := strings.TrimSuffix(strings.TrimPrefix(res.Header.Get("Location"), "/messages/"), "?done=sent")
	patel.signIn(two, "clinician@demo.carefront.example")
	if s, page := patel.get(two + "staff/inbox"); s != 200 || !strings.Contains(page, "/staff/inbox/"+thread) {
		t.Fatalf("Dr. Patel's inbox at two: %d, the thread is not there", s)
	}
	if res, _ := patel.post(two+"staff/inbox/"+thread, url.Values{"text": {"Yes, it is 6.8: well done."}}); res.StatusCode != 303 {
		t.Fatalf("answering at two: %d", res.StatusCode)
	}
	if _, page := maria.get(one + "messages/" + thread); !strings.Contains(page, "Yes, it is 6.8: well done.") || !strings.Contains(page, "Anika Patel") {
		t.Errorf("the answer from two is not in Maria's conversation at one")
	}
}

// browser is one person's cookies and requests against the instances
// (cookies are per host, so each instance gets them).
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t, &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// signIn signs in with the demo password and authenticator code.
func (b *browser) signIn(base, email string) {
	b.t.Helper()
	if res, _ := b.post(base+"signin", url.Values{"email": {email}, "password": {demo.DemoPassword}}); res.StatusCode != 303 {
		b.t.Fatalf("sign-in %s: %d", email, res.StatusCode)
	}
	code, _ := totp.GenerateCode(demo.DemoTOTPSecret, time.Now())
	if res, _ := b.post(base+"signin/verify", url.Values{"code": {code}}); res.StatusCode != 303 {
		b.t.Fatalf("second step %s: %d", email, res.StatusCode)
	}
}

func (b *browser) get(u string) (int, string) {
	b.t.Helper()
	res, err := b.c.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

func (b *browser) post(u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	res, err := b.c.PostForm(u, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

// TestTwoInstancesVideoVisit: Maria waits in her video visit's waiting
// room through one carefront process while Dr. Patel opens it through
// another, on one PostgreSQL: he sees her waiting, lets her in, and
// their signalling crosses between the processes both ways until he
// ends the visit.
func TestTwoInstancesVideoVisit(t *testing.T) {
	env := dialectEnv(t, "postgres")
	one, _, _ := serve(t, []string{"--demo"}, env)
	two, _, _ := serve(t, []string{"--demo"}, env)
	maria, patel := newBrowser(t), newBrowser(t)
	maria.signIn(one, "maria@demo.carefront.example")
	patel.signIn(two, "clinician@demo.carefront.example")
	const visit = "visits/demo-maria-appt-video/video"
	if res, _ := maria.post(one+visit+"/consent", url.Values{"agree": {"yes"}}); res.StatusCode != 303 {
		t.Fatalf("consent: %d", res.StatusCode)
	}
	token := func(b *browser, u string) string {
		t.Helper()
		_, page := b.get(u)
		m := regexp.MustCompile(`data-config="([^"]+)"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no visit at %s:\n%s", u, page)
		}
		var cfg struct{ Token string }
		json.Unmarshal([]byte(html.UnescapeString(m[1])), &cfg)
		return cfg.Token
	}
	dial := func(b *browser, base, path, tok string) *videoConn {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+path,
			&websocket.DialOptions{HTTPClient: b.c, HTTPHeader: http.Header{"Origin": {strings.TrimSuffix(base, "/")}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.CloseNow() })
		c := &videoConn{t: t, ws: ws}
		c.send(map[string]any{"type": "hello", "token": tok})
		return c
	}
	m := dial(maria, one, visit+"/ws", token(maria, one+visit))
	if w := m.next("welcome"); w["state"] != "waiting" {
		t.Fatalf("Maria's welcome at one: %v", w)
	}
	p := dial(patel, two, visit+"/ws?for=demo-maria", token(patel, two+visit+"?for=demo-maria"))
	p.next("welcome")
	var waiting []any
	for len(waiting) == 0 {
		waiting = p.next("waiting")["list"].([]any)
	}
	p.send(map[string]any{"type": "admit", "who": waiting[0].(map[string]any)["id"]})
	peers := m.next("admitted")["peers"].([]any)
	if len(peers) != 1 {
		t.Fatalf("Maria is told of %v", peers)
	}
	patelID := peers[0].(map[string]any)["id"].(string)
	m.send(map[string]any{"type": "signal", "to": patelID, "data": map[string]any{"sdp": "offer from one"}})
	got := p.next("signal")
	if got["data"].(map[string]any)["sdp"] != "offer from one" {
		t.Fatalf("at two: %v", got)
	}
	p.send(map[string]any{"type": "signal", "to": got["from"], "data": map[string]any{"sdp": "answer from two"}})
	if got := m.next("signal"); got["data"].(map[string]any)["sdp"] != "answer from two" {
		t.Fatalf("at one: %v", got)
	}
	p.send(map[string]any{"type": "end"})
	m.next("ended")
}

// videoConn is one side of a visit's signalling in a test.
type videoConn struct {
	t  *testing.T
	ws *websocket.Conn
}

func (c *videoConn) send(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	if err := c.ws.Write(context.Background(), websocket.MessageText, b); err != nil {
		c.t.Fatal(err)
	}
}

// next reads until a message of type typ, within 15 seconds.
func (c *videoConn) next(typ string) map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		_, b, err := c.ws.Read(ctx)
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", typ, err)
		}
		var m map[string]any
		json.Unmarshal(b, &m)
		if m["type"] == typ {
			return m
		}
		if m["type"] == "error" {
			c.t.Fatalf("waiting for %s: %v", typ, m)
		}
	}
}
