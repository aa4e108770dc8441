package web

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"carefront/internal/audit/audittest"
	"carefront/internal/demo"
	"carefront/internal/identity"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

type shlinkPayload struct {
	URL   string `json:"url"`
	Key   string `json:"key"`
	Exp   int64  `json:"exp"`
	Flag  string `json:"flag"`
	Label string `json:"label"`
	V     int    `json:"v"`
}

// makeLink makes a share link through the page and returns its payload.
func (h *authHarness) makeLink(t *testing.T, form url.Values) shlinkPayload {
	t.Helper()
	res, page := h.post(t, "/sharing/links", form)
	if res.StatusCode != 200 {
		t.Fatalf("make link = %d", res.StatusCode)
	}
	m := regexp.MustCompile(`data-shlink="(shlink:/[A-Za-z0-9_-]+)"`).FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, "<svg class=\"cf-qr\"") {
		t.Fatal("no link or QR code on the page")
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(html.UnescapeString(m[1]), "shlink:/"))
	if err != nil {
		t.Fatal(err)
	}
	var p shlinkPayload
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// recipient is someone outside carefront: no cookies.
func manifest(t *testing.T, h *authHarness, u string, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "https://viewer.example")
	res, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	json.NewDecoder(res.Body).Decode(&out)
	return res, out
}

// TestShareLinkReadAsARecipient: Maria makes a link with a passcode; a
// recipient reads it as the SMART Health Links specification says:
// manifest POST with recipient and passcode (wrong ones answered 401 with
// the attempts left), the file location once, the JWE decrypted with the
// key from the link; the access is listed with the recipient's name; a
// revoked link is 404. The endpoints are open to any origin and set no
// cookie.
func TestShareLinkReadAsARecipient(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := recordHarness(t, db)
		h.signIn(t, "maria@example.com")
		for _, bad := range []url.Values{
			{"days": {"7"}},                                              // nothing chosen
			{"content": {"x-rays"}, "days": {"7"}},                       // no such content
			{"content": {"summary"}, "days": {"400"}},                    // too long
			{"content": {"summary"}, "days": {"7"}, "passcode": {"123"}}, // passcode too short
			{"content": {"summary"}, "days": {"7"}, "label": {strings.Repeat("x", 81)}},
		} {
			if res, _ := h.post(t, "/sharing/links", bad); res.StatusCode != 422 {
				t.Errorf("make link %v = %d, want 422", bad, res.StatusCode)
			}
		}
		p := h.makeLink(t, url.Values{"content": {"summary", "results"}, "days": {"7"}, "label": {"For Dr. Lee"}, "passcode": {"tulip-42"}})
		if p.Flag != "LP" || p.V != 1 || p.Label != "For Dr. Lee" || p.Exp == 0 || !strings.Contains(p.URL, "/shl/") {
			t.Fatalf("payload %+v", p)
		}
		if _, _, e := audittest.Last(t, db); !strings.Contains(e, "share-link-created") || !strings.Contains(e, "Patient/demo-maria") {
			t.Errorf("making a link is not audited: %s", e)
		}
		id := p.URL[strings.LastIndex(p.URL, "/")+1:]
		if raw, _ := base64.RawURLEncoding.DecodeString(id); len(raw) != 32 {
			t.Errorf("manifest id has %d bytes of entropy, want 32", len(raw))
		}
		key, err := base64.RawURLEncoding.DecodeString(p.Key)
		if err != nil || len(key) != 32 {
			t.Fatalf("key: %d bytes, %v", len(key), err)
		}
		if res, _ := manifest(t, h, p.URL, `{"passcode":"tulip-42"}`); res.StatusCode != 400 {
			t.Errorf("no recipient = %d", res.StatusCode)
		}
		res, out := manifest(t, h, p.URL, `{"recipient":"Dr. Lee","passcode":"wrong"}`)
		if res.StatusCode != 401 || out["remainingAttempts"] != float64(4) {
			t.Errorf("wrong passcode = %d %v", res.StatusCode, out)
		}
		if _, _, e := audittest.Last(t, db); !strings.Contains(e, "share-link-passcode-wrong") || strings.Contains(e, "Dr. Lee") {
			t.Errorf("a wrong passcode is not on record, or names the recipient: %s", e)
		}
		if res.Header.Get("Access-Control-Allow-Origin") != "*" || res.Header.Get("Set-Cookie") != "" {
			t.Error("the manifest endpoint is not open to any origin, or sets a cookie")
		}
		res, out = manifest(t, h, p.URL, `{"recipient":"Dr. Lee","passcode":"tulip-42"}`)
		if res.StatusCode != 200 {
			t.Fatalf("manifest = %d %v", res.StatusCode, out)
		}
		files := out["files"].([]any)
		f := files[0].(map[string]any)
		if f["contentType"] != "application/fhir+json" {
			t.Errorf("file %v", f)
		}
		get := func(u string) (int, string) {
			res, err := h.srv.Client().Get(u)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res.StatusCode, string(b)
		}
		status, jwe := get(f["location"].(string))
		if status != 200 {
			t.Fatalf("file = %d", status)
		}
		obj, err := jose.ParseEncrypted(jwe, []jose.KeyAlgorithm{jose.DIRECT}, []jose.ContentEncryption{jose.A256GCM})
		if err != nil {
			t.Fatal(err)
		}
		if obj.Header.ExtraHeaders["cty"] != "application/fhir+json" {
			t.Errorf("JWE header %+v", obj.Header)
		}
		plain, err := obj.Decrypt(key)
		if err != nil {
			t.Fatal(err)
		}
		bundle := string(plain)
		for _, want := range []string{`"resourceType":"Bundle"`, `"demo-maria"`, `"Observation"`, `"Condition"`} {
			if !strings.Contains(bundle, want) {
				t.Errorf("the shared bundle lacks %s", want)
			}
		}
		for _, not := range []string{"demo-walter", "demo-sam", `"Encounter"`, `"DocumentReference"`} {
			if strings.Contains(bundle, not) {
				t.Errorf("the shared bundle holds %s, which the link does not share", not)
			}
		}
		if status, _ := get(f["location"].(string)); status != 404 {
			t.Errorf("a file location used twice = %d", status)
		}
		_, out = manifest(t, h, p.URL, `{"recipient":"Dr. Lee","passcode":"tulip-42"}`)
		_, jwe2 := get(out["files"].([]any)[0].(map[string]any)["location"].(string))
		if strings.Split(jwe2, ".")[2] == strings.Split(jwe, ".")[2] {
			t.Error("two files share an IV")
		}
		_, page := h.get(t, "/sharing/links")
		if !strings.Contains(page, "Dr. Lee") || !strings.Contains(page, "For Dr. Lee") {
			t.Error("the link's accesses are not listed")
		}
		if _, log := h.get(t, "/sharing/access-log?who=link"); !strings.Contains(log, "Someone with a share link") || strings.Contains(log, "Dr. Lee") {
			t.Error("the access log does not show the link's reads, or names the recipient (kept in the link's own table)")
		}
		linkID := regexp.MustCompile(`name="link" value="([^"]+)"`).FindStringSubmatch(page)
		if res, _ := h.post(t, "/sharing/links/revoke", url.Values{"link": {linkID[1]}}); res.StatusCode != 303 {
			t.Fatalf("revoke = %d", res.StatusCode)
		}
		if res, _ := manifest(t, h, p.URL, `{"recipient":"Dr. Lee","passcode":"tulip-42"}`); res.StatusCode != 404 {
			t.Errorf("a revoked link = %d", res.StatusCode)
		}
	})
}

// TestShareLinkPasscodeGuesses: parallel wrong guesses never get more
// than the attempts a link has; then it is locked (404), even for the
// right passcode.
func TestShareLinkPasscodeGuesses(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	h := recordHarness(t, db)
	h.signIn(t, "maria@example.com")
	p := h.makeLink(t, url.Values{"content": {"allergies"}, "days": {"1"}, "passcode": {"tulip-42"}})
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, _ := manifest(t, h, p.URL, `{"recipient":"guesser","passcode":"nope-nope"}`)
			mu.Lock()
			counts[res.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts[401] > 5 || counts[200] > 0 || counts[500] > 0 || counts[401]+counts[404]+counts[429] != 12 {
		t.Errorf("12 parallel wrong guesses: %v, want at most 5 x 401, the rest 404 or 429 (busy, not counted)", counts)
	}
	// Then one at a time until the link locks: five wrong answers in all.
	for range 10 {
		res, _ := manifest(t, h, p.URL, `{"recipient":"guesser","passcode":"nope-nope"}`)
		counts[res.StatusCode]++
		if res.StatusCode == 404 {
			break
		}
	}
	if counts[401] != 5 {
		t.Errorf("wrong guesses answered 401 %d times in all, want exactly 5", counts[401])
	}
	if res, _ := manifest(t, h, p.URL, `{"recipient":"Dr. Lee","passcode":"tulip-42"}`); res.StatusCode != 404 {
		t.Errorf("the right passcode on a locked link = %d", res.StatusCode)
	}
	if _, page := h.get(t, "/sharing/links"); !strings.Contains(page, "Locked after wrong passcodes") {
		t.Error("the locked link is not shown as locked")
	}
}

// TestShareLinksByCaregivers: a caregiver with full access makes a link
// for the record, which shares what they may see (Sam's sensitive records
// never); one with less may not make links.
func TestShareLinksByCaregivers(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	h := recordHarness(t, db)
	h.account(t, "dana@example.com", identity.Person, "", "")
	h.account(t, "linda@example.com", identity.Person, "", "")
	h.grant(t, demo.Sam, "dana@example.com", "full")
	h.grant(t, demo.Walter, "linda@example.com", "medications-visits")
	h.signIn(t, "linda@example.com")
	if res, _ := h.get(t, "/sharing/links?for=demo-walter"); res.StatusCode != 403 {
		t.Errorf("a medicines-and-visits caregiver opens share links = %d", res.StatusCode)
	}
	h.post(t, "/signout", nil)
	h.signIn(t, "dana@example.com")
	p := h.makeLink(t, url.Values{"for": {"demo-sam"}, "content": {"summary", "results"}, "days": {"7"}})
	if p.Flag != "L" {
		t.Errorf("flag %q", p.Flag)
	}
	res, out := manifest(t, h, p.URL, `{"recipient":"School nurse"}`)
	if res.StatusCode != 200 {
		t.Fatalf("manifest = %d", res.StatusCode)
	}
	r, err := h.srv.Client().Get(out["files"].([]any)[0].(map[string]any)["location"].(string))
	if err != nil {
		t.Fatal(err)
	}
	jwe, _ := io.ReadAll(r.Body)
	r.Body.Close()
	obj, err := jose.ParseEncrypted(string(jwe), []jose.KeyAlgorithm{jose.DIRECT}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := base64.RawURLEncoding.DecodeString(p.Key)
	plain, err := obj.Decrypt(key)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(plain), "demo-sam") || strings.Contains(string(plain), "SEX") || strings.Contains(string(plain), "Contraception") {
		t.Error("Dana's link for Sam holds his sensitive records, or not his record")
	}
	// Dana sees and stops only the links she made, not Sam's own.
	if err := h.ts.opts.Links.Revoke(context.Background(), "x", demo.Sam, "Person/x", "", true); err == nil {
		t.Error("a caregiver stopped a link that is not hers")
	}
	if _, page := h.get(t, "/sharing/links?for=demo-sam"); strings.Count(page, `name="link" value=`) != 1 {
		t.Error("Dana does not see exactly her one link")
	}
}
