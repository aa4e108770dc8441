package web

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// Changing the email address after five minutes: the step-up happens in
// place and the address typed comes through it.
func TestChangeEmailStepsUpAndKeepsWhatWasTyped(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := newAuthHarness(t, db)
		secret := h.signIn(t, "ana@example.com")
		h.clock.Add(6 * time.Minute)
		if res, page := h.get(t, "/account/email"); res.StatusCode != 200 || !strings.Contains(page, "ana@example.com") {
			t.Fatalf("email page: %d", res.StatusCode)
		}
		res, page := h.post(t, "/account/email", url.Values{"email": {"ana.new@example.org"}})
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(page, `<input type="hidden" name="email" value="ana.new@example.org">`) {
			t.Fatalf("step-up in place: %d", res.StatusCode)
		}
		if n := len(h.mail(t)); n != 0 {
			t.Fatalf("a code was sent before the step-up: %d mails", n)
		}
		h.clock.Add(30 * time.Second)
		res, page = h.post(t, "/account/email", url.Values{"email": {"ana.new@example.org"}, "stepup_code": {totpCode(t, secret, h.clock.Now())}})
		if res.StatusCode != 200 || !strings.Contains(page, `action="/account/email/confirm"`) {
			t.Fatalf("after step-up: %d", res.StatusCode)
		}
		msg := h.mail(t)[0]
		code := regexp.MustCompile(`\b\d{6}\b`).FindString(msg.Text)
		if msg.To != "ana.new@example.org" || code == "" {
			t.Fatalf("the code went to %s", msg.To)
		}
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		if res, page := h.post(t, "/account/email/confirm", url.Values{"code": {wrong}}); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, `id="code-error"`) {
			t.Errorf("a wrong code: %d", res.StatusCode)
		}
		if res, page := h.post(t, "/account/email/confirm", url.Values{"code": {code}}); res.StatusCode != 200 || !strings.Contains(page, "ana.new@example.org") {
			t.Fatalf("confirm: %d", res.StatusCode)
		}
		if a := mustAccount(t, h, "ana.new@example.org"); a.Email != "ana.new@example.org" {
			t.Errorf("email now %s", a.Email)
		}
		if old := h.mail(t)[0]; old.To != "ana@example.com" {
			t.Errorf("the old address was not told; last mail to %s", old.To)
		}
		// The account page says the new address.
		if _, page := h.get(t, "/account/security"); !strings.Contains(page, "ana.new@example.org") {
			t.Error("the security page still shows the old address")
		}
	})
}

// Whether another account uses an address is not told by changing to it:
// the same status and page as a free address, with the address typed.
func TestChangeEmailToATakenAddressAnswersAsAFreeOne(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := newAuthHarness(t, db)
		other := newAuthHarness(t, db)
		other.signIn(t, "taken@example.org")
		h.signIn(t, "ana@example.com")
		answer := func(email string) (int, string) {
			res, page := h.post(t, "/account/email", url.Values{"email": {email}})
			main := regexp.MustCompile(`(?s)<main.*</main>`).FindString(page)
			return res.StatusCode, strings.ReplaceAll(main, email, "ADDRESS")
		}
		freeStatus, free := answer("free@example.org")
		takenStatus, taken := answer("taken@example.org")
		if freeStatus != 200 || takenStatus != freeStatus || taken != free {
			t.Errorf("free address: %d, taken address: %d; pages differ: %v", freeStatus, takenStatus, taken != free)
		}
	})
}
