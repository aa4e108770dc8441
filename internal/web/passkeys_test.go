package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"carefront/internal/identity"
	"carefront/internal/identity/passkeytest"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// withPasskeys turns passkeys on for the harness. The relying party is
// localhost on the test server's port (WebAuthn refuses IP addresses);
// the software authenticator reports that origin.
func (h *authHarness) withPasskeys(t *testing.T) *passkeytest.Authenticator {
	t.Helper()
	u, _ := url.Parse(h.srv.URL)
	origin := "https://localhost:" + u.Port()
	rp, err := identity.NewRelyingParty(origin, "carefront")
	if err != nil {
		t.Fatal(err)
	}
	h.auth.WebAuthn = rp
	return &passkeytest.Authenticator{Origin: origin, BackupEligible: true, BackupState: true}
}

// fresh is a second browser (its own cookies) on the same server.
func (h *authHarness) fresh() *authHarness {
	o := *h
	jar, _ := cookiejar.New(nil)
	c := *h.srv.Client() // Client returns one shared value: copy it
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	o.client = &c
	return &o
}

func (h *authHarness) postJSON(t *testing.T, path string, v any) (int, map[string]json.RawMessage) {
	t.Helper()
	b, _ := json.Marshal(v)
	req, _ := http.NewRequest("POST", h.srv.URL+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	res, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]json.RawMessage
	json.NewDecoder(res.Body).Decode(&out)
	res.Body.Close()
	return res.StatusCode, out
}

func str(m map[string]json.RawMessage, k string) string {
	var s string
	json.Unmarshal(m[k], &s)
	return s
}

// ceremony asks an options endpoint and lets dev answer it.
func (h *authHarness) ceremony(t *testing.T, optionsPath string, answer func(opts []byte) ([]byte, error)) (token string, resp []byte) {
	t.Helper()
	status, o := h.postJSON(t, optionsPath, nil)
	if status != 200 {
		t.Fatalf("%s: %d %s", optionsPath, status, str(o, "message"))
	}
	resp, err := answer(o["options"])
	if err != nil {
		t.Fatal(err)
	}
	return str(o, "ceremony"), resp
}

func (h *authHarness) addPasskey(t *testing.T, dev *passkeytest.Authenticator, name string) map[string]json.RawMessage {
	t.Helper()
	token, resp := h.ceremony(t, "/account/passkeys/options", func(o []byte) ([]byte, error) {
		r, _, err := dev.Create(o)
		return r, err
	})
	status, out := h.postJSON(t, "/account/passkeys", map[string]any{"ceremony": token, "name": name, "credential": json.RawMessage(resp)})
	if status != 200 {
		t.Fatalf("add passkey: %d %s", status, str(out, "message"))
	}
	return out
}

func TestPasskeysThroughThePortal(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := newAuthHarness(t, db)
		dev := h.withPasskeys(t)
		secret := h.signIn(t, "ana@example.com")

		out := h.addPasskey(t, dev, "My phone")
		if str(out, "next") != "/account/security" || string(out["first"]) == "true" {
			t.Errorf("after adding a second factor: %v", out)
		}
		_, page := h.get(t, "/account/security")
		if !strings.Contains(page, "My phone") || !strings.Contains(page, `action="/account/passkeys/remove"`) {
			t.Errorf("the security page does not list the passkey")
		}

		// A passkey alone signs in another browser with two factors.
		b := h.fresh()
		token, resp := b.ceremony(t, "/signin/passkey/options", func(o []byte) ([]byte, error) { return dev.Get(o, nil) })
		// The return address is hostile (a tab that browsers drop, making
		// //evil.example): the next page is still on this site.
		status, out := b.postJSON(t, "/signin/passkey", map[string]any{"ceremony": token, "credential": json.RawMessage(resp), "return": "/\t/evil.example"})
		if status != 200 || str(out, "next") != "/" {
			t.Fatalf("passkey sign-in: %d %v", status, out)
		}
		if res, _ := b.get(t, "/account/security"); res.StatusCode != 200 {
			t.Fatalf("a passkey-only session is not two-factor: %d", res.StatusCode)
		}
		// A passkey alone also replaces a half-finished sign-in (password
		// given, second step not) in the same browser.
		e := h.fresh()
		if res, _ := e.post(t, "/signin", url.Values{"email": {"ana@example.com"}, "password": {"a long enough passphrase"}}); res.StatusCode != 303 {
			t.Fatalf("password: %d", res.StatusCode)
		}
		token2, resp2 := e.ceremony(t, "/signin/passkey/options", func(o []byte) ([]byte, error) { return dev.Get(o, nil) })
		if status, out := e.postJSON(t, "/signin/passkey", map[string]any{"ceremony": token2, "credential": json.RawMessage(resp2)}); status != 200 {
			t.Fatalf("passkey sign-in over a password-only session: %d %v", status, out)
		}
		if res, _ := e.get(t, "/account/security"); res.StatusCode != 200 {
			t.Fatalf("after a passkey over a password-only session: %d", res.StatusCode)
		}
		// The same answer again, from a third browser: refused, no session.
		c := h.fresh()
		status, out = c.postJSON(t, "/signin/passkey", map[string]any{"ceremony": token, "credential": json.RawMessage(resp)})
		if status != http.StatusUnauthorized || str(out, "message") == "" {
			t.Errorf("a replayed answer: %d %v", status, out)
		}
		if res, _ := c.get(t, "/account/security"); res.StatusCode != 303 {
			t.Errorf("a replayed answer made a session: %d", res.StatusCode)
		}
		// Malformed answers are refused plainly.
		if status, _ := c.postJSON(t, "/signin/passkey", map[string]any{"ceremony": "x"}); status != http.StatusBadRequest {
			t.Errorf("an answer without a credential: %d", status)
		}

		// A passkey as the second step after a password.
		d := h.fresh()
		if res, _ := d.post(t, "/signin", url.Values{"email": {"ana@example.com"}, "password": {"a long enough passphrase"}}); res.StatusCode != 303 {
			t.Fatalf("password: %d", res.StatusCode)
		}
		if _, page := d.get(t, "/signin/verify"); !strings.Contains(page, "data-passkey-verify") {
			t.Errorf("the verify page does not offer the passkey")
		}
		token, resp = d.ceremony(t, "/signin/verify/passkey/options", func(o []byte) ([]byte, error) { return dev.Get(o, nil) })
		status, out = d.postJSON(t, "/signin/passkey", map[string]any{"ceremony": token, "credential": json.RawMessage(resp), "return": "/account/security"})
		if status != 200 || str(out, "next") != "/account/security" {
			t.Fatalf("passkey second step: %d %v", status, out)
		}

		// Adding a passkey after five minutes needs step-up first.
		h.clock.Add(6 * time.Minute)
		status, out = h.postJSON(t, "/account/passkeys/options", nil)
		if status != http.StatusForbidden || !strings.HasPrefix(str(out, "stepUp"), "/signin/verify?return=") {
			t.Errorf("adding a passkey without a recent check: %d %v", status, out)
		}

		// Removing: step-up in place carries which passkey, then it goes.
		h.clock.Add(6 * time.Minute)
		h.get(t, "/account/security") // keep the session from idling out
		id := regexp.MustCompile(`name="id" value="([0-9a-f]{32})"`).FindStringSubmatch(page)[1]
		res, page := h.post(t, "/account/passkeys/remove", url.Values{"id": {id}})
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(page, `<input type="hidden" name="id" value="`+id+`">`) ||
			!strings.Contains(page, `action="/account/passkeys/remove"`) {
			t.Fatalf("step-up before removing: %d", res.StatusCode)
		}
		h.clock.Add(30 * time.Second)
		res, _ = h.post(t, "/account/passkeys/remove", url.Values{"id": {id}, "stepup_code": {totpCode(t, secret, h.clock.Now())}})
		if res.StatusCode != 303 {
			t.Fatalf("remove after step-up: %d", res.StatusCode)
		}
		if keys, _ := h.store.Passkeys(t.Context(), mustAccount(t, h, "ana@example.com").ID); len(keys) != 0 {
			t.Errorf("the passkey is still there")
		}
		// Changing factors signed out the other browsers.
		if res, _ := b.get(t, "/account/security"); res.StatusCode != 303 {
			t.Errorf("another session survived a factor change: %d", res.StatusCode)
		}
		// The last factor cannot be removed.
		res, page = h.post(t, "/account/authenticator/remove", nil)
		if res.StatusCode != http.StatusConflict || !strings.Contains(page, "usa-alert--error") {
			t.Errorf("removing the last factor: %d", res.StatusCode)
		}
	})
}

func mustAccount(t *testing.T, h *authHarness, email string) *identity.Account {
	t.Helper()
	a, err := h.store.AccountByEmail(t.Context(), email)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestPasskeyAsFirstSecondFactor(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := newAuthHarness(t, db)
		dev := h.withPasskeys(t)
		// Activation, then a passkey instead of an authenticator app.
		res, _ := h.post(t, "/activate", url.Values{"code": {h.code}, "family": {"Rivera"}, "month": {"1"}, "day": {"2"}, "year": {"1970"},
			"email": {"new@example.com"}, "password": {"a long enough passphrase"}, "password2": {"a long enough passphrase"}})
		if res.StatusCode != 303 || res.Header.Get("Location") != "/activate/email" {
			t.Fatalf("activate: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		h.proveEmail(t, "new@example.com")
		if _, page := h.get(t, "/mfa/setup"); !strings.Contains(page, "data-passkey-register") {
			t.Errorf("setup does not offer a passkey")
		}
		// One factor is not enough to see anything.
		if res, _ := h.get(t, "/account/security"); res.StatusCode != 303 {
			t.Errorf("a password-only session reached account security: %d", res.StatusCode)
		}
		out := h.addPasskey(t, dev, "Laptop")
		if string(out["first"]) != "true" {
			t.Errorf("the first factor does not lead to recovery codes: %v", out)
		}
		res, page := h.post(t, "/account/recovery-codes", nil)
		if res.StatusCode != 200 || len(codeRE.FindAllString(page, -1)) != 10 {
			t.Fatalf("recovery codes after the first passkey: %d", res.StatusCode)
		}
		// Cross-site posts to the passkey endpoints are refused.
		req, _ := http.NewRequest("POST", h.srv.URL+"/signin/passkey", strings.NewReader(`{}`))
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		req.Header.Set("Content-Type", "application/json")
		if res, err := h.client.Do(req); err != nil || res.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site passkey post: %v %v", res.StatusCode, err)
		}
	})
}

// Someone whose only factor is a passkey is sent to sign in with it
// rather than told they are locked out.
func TestResetWithOnlyAPasskeyPointsToThePasskey(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := newAuthHarness(t, db)
		dev := h.withPasskeys(t)
		ctx := t.Context()
		hash, _ := identity.HashPassword("a long enough passphrase", identity.Params{Memory: 8 * 1024, Time: 1, Threads: 1})
		a := &identity.Account{Kind: identity.Person, Email: "keys@example.com", PasswordHash: hash}
		if err := h.store.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		opts, token, err := h.auth.BeginPasskeyRegistration(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(opts)
		resp, _, err := dev.Create(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.auth.FinishPasskeyRegistration(ctx, a, token, "Phone", resp, "", ""); err != nil {
			t.Fatal(err)
		}
		h.post(t, "/forgot", url.Values{"email": {"keys@example.com"}})
		link := regexp.MustCompile(`/reset\?token=[A-Za-z0-9_-]+`).FindString(h.mailWith(t, "/reset?token=").Text)
		res, page := h.get(t, link)
		if res.StatusCode != 200 || !strings.Contains(page, "Sign in with your passkey instead") || strings.Contains(page, `name="code"`) {
			t.Errorf("reset page for a passkey-only account: %d", res.StatusCode)
		}
	})
}
