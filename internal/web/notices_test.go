package web

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"carefront/internal/demo"
	"carefront/internal/identity"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// TestNoticeSettings: a signed-in person chooses the language, channels
// and quiet hours of their notifications on /settings/notifications; bad
// input is shown beside its field and nothing is saved; security email
// cannot be turned off; only a signed-in person reaches the page.
func TestNoticeSettings(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := newAuthHarness(t, db, withRecords(t, db))
		if res, _ := h.get(t, "/settings/notifications"); res.StatusCode != 303 || res.Header.Get("Location") != "/signin" {
			t.Fatalf("signed out: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		h.account(t, "maria@example.com", identity.Person, demo.Maria, "")
		h.signIn(t, "maria@example.com")
		res, page := h.get(t, "/settings/notifications")
		if res.StatusCode != 200 || !strings.Contains(page, `id="email-messages" type="checkbox" name="email-messages" checked`) ||
			!strings.Contains(page, `name="email-security" checked disabled`) || strings.Contains(page, `name="sms-messages" checked`) {
			t.Fatalf("GET = %d:\n%s", res.StatusCode, page)
		}
		acct, err := h.store.AccountByEmail(context.Background(), "maria@example.com")
		if err != nil {
			t.Fatal(err)
		}
		saved := func() identity.NoticePrefs {
			p, err := h.store.NoticePrefs(context.Background(), acct.ID)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		for name, tc := range map[string]struct {
			form  url.Values
			field string
		}{
			"a bad number":     {url.Values{"sms-messages": {"on"}, "phone": {"555-CALL-NOW"}}, "phone-error"},
			"text, no number":  {url.Values{"sms-visits": {"on"}}, "phone-error"},
			"one quiet time":   {url.Values{"quiet-from": {"22:00"}}, "quiet-error"},
			"a bad time":       {url.Values{"quiet-from": {"25:00"}, "quiet-to": {"07:00"}}, "quiet-error"},
			"a language":       {url.Values{"lang": {"fr"}}, "lang-error"},
			"same quiet times": {url.Values{"quiet-from": {"07:00"}, "quiet-to": {"07:00"}}, "quiet-error"},
		} {
			res, page := h.post(t, "/settings/notifications", tc.form)
			if res.StatusCode != 422 || !strings.Contains(page, `id="`+tc.field+`" role="alert"`) {
				t.Errorf("%s: %d, want 422 with %s:\n%s", name, res.StatusCode, tc.field, page)
			}
		}
		// Two problems in one form: both are shown.
		if _, page := h.post(t, "/settings/notifications", url.Values{"sms-messages": {"on"}, "quiet-from": {"22:00"}}); !strings.Contains(page, `id="phone-error"`) || !strings.Contains(page, `id="quiet-error"`) {
			t.Error("a form with two problems shows only one")
		}
		if p := saved(); p.Phone != "" || p.Lang != "" || p.QuietFrom != p.QuietTo {
			t.Errorf("bad input saved something: %+v", p)
		}
		res, _ = h.post(t, "/settings/notifications", url.Values{"lang": {"es"}, "email-visits": {"on"}, "sms-messages": {"on"},
			"phone": {"555 555 0142"}, "quiet-from": {"22:00"}, "quiet-to": {"07:00"}})
		if res.StatusCode != 303 || res.Header.Get("Location") != "/settings/notifications?saved=1" {
			t.Fatalf("saving: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		p := saved()
		if p.Lang != "es" || p.Phone != "+15555550142" || !p.SMS[identity.NoticeMessages] || p.Email[identity.NoticeMessages] ||
			!p.Email[identity.NoticeVisits] || !p.Email[identity.NoticeSecurity] || p.QuietFrom != 22*60 || p.QuietTo != 7*60 {
			t.Errorf("saved %+v", p)
		}
		_, page = h.get(t, "/settings/notifications?saved=1")
		for _, want := range []string{"Saved.", `15555550142"`, `value="22:00"`, `value="07:00"`, `<option value="es" lang="es" selected>`,
			`name="sms-messages" checked`} {
			if !strings.Contains(page, want) {
				t.Errorf("the page after saving lacks %q", want)
			}
		}
	})
}
