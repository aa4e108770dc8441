package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

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
	client := func() *http.Client {
		jar, _ := cookiejar.New(nil)
		return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	signIn := func(c *http.Client, base, email string) {
		t.Helper()
		res, err := c.PostForm(base+"signin", url.Values{"email": {email}, "password": {demo.DemoPassword}})
		if err != nil || res.StatusCode != 303 {
			t.Fatalf("sign-in %s: %v %v", email, res, err)
		}
		res.Body.Close()
		code, _ := totp.GenerateCode(demo.DemoTOTPSecret, time.Now())
		res, err = c.PostForm(base+"signin/verify", url.Values{"code": {code}})
		if err != nil || res.StatusCode != 303 {
			t.Fatalf("second step %s: %v %v", email, res, err)
		}
		res.Body.Close()
	}
	get := func(c *http.Client, u string) (int, string) {
		t.Helper()
		res, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	linda, walter := client(), client()
	signIn(linda, one, "linda@demo.carefront.example")
	if s, body := get(linda, one+"api/views/medications?for=demo-walter"); s != 200 || !strings.Contains(body, "apixaban") {
		t.Fatalf("Linda's view of Walter's medicines at one: %d", s)
	}
	signIn(walter, two, "walter@demo.carefront.example")
	_, page := get(walter, two+"sharing")
	i := strings.Index(page, `name="grant" value="`)
	if i < 0 {
		t.Fatal("no grant on Walter's sharing page")
	}
	id := page[i+len(`name="grant" value="`):]
	id = id[:strings.IndexByte(id, '"')]
	start := time.Now()
	res, err := walter.PostForm(two+"sharing/caregivers/revoke", url.Values{"grant": {id}})
	if err != nil || res.StatusCode != 303 {
		t.Fatalf("revoke at two: %v %v", res, err)
	}
	res.Body.Close()
	if s, body := get(linda, one+"api/views/medications?for=demo-walter"); s != 403 || strings.Contains(body, "apixaban") {
		t.Errorf("Linda's next request at one after the revocation at two: %d", s)
	}
	t.Logf("revoked at two, refused at one's next request %v later", time.Since(start))
	if s, _ := get(linda, one+"account/security"); s != 200 {
		t.Errorf("Linda's own session ended: %d", s)
	}
}
