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
