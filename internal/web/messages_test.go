package web

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"carefront/internal/demo"
	"carefront/internal/identity"
	"carefront/internal/messaging"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// messagesHarness is the record harness with messaging on: Dr. Patel's
// team (offered to the patients she cares for) and Billing (offered to
// everyone), each answered by one staff member; Maria and Walter have
// accounts.
func messagesHarness(t *testing.T, db *sqldb.DB) (*authHarness, *messaging.Store, map[string]string) {
	t.Helper()
	var ms *messaging.Store
	h := newAuthHarness(t, db, withRecords(t, db), func(o *Options) {
		ms = &messaging.Store{DB: db, Keys: o.Auth.Keys, Audit: o.Auth.Audit, Notices: o.Auth}
		o.Messages = ms
	})
	h.account(t, "maria@example.com", identity.Person, demo.Maria, "")
	h.account(t, "walter@example.com", identity.Person, demo.Walter, "")
	h.account(t, "patel@clinic.example", identity.Staff, "", "clinician")
	h.account(t, "billing@clinic.example", identity.Staff, "", "support")
	ctx := context.Background()
	pools := map[string]string{}
	for _, p := range []struct{ name, practitioner, member string }{
		{"Dr. Patel's team", "demo-dr-patel", "patel@clinic.example"},
		{"Billing", "", "billing@clinic.example"},
		{"Dr. Nobody's team", "someone-else", "patel@clinic.example"},
	} {
		pool, err := ms.AddPool(ctx, messaging.NewPool{Name: p.name, ResponseTime: 48 * time.Hour, Practitioner: p.practitioner})
		if err != nil {
			t.Fatal(err)
		}
		if err := ms.AddMember(ctx, pool.ID, p.member, ""); err != nil {
			t.Fatal(err)
		}
		pools[p.name] = pool.ID
	}
	return h, ms, pools
}

// TestPatientMessagesPages: Maria writes to her clinician's team from
// /messages/new (offered her clinician's team and Billing, not a team of a
// clinician who does not care for her), sees the conversation, writes
// back; markup she typed is shown as text and web addresses as links;
// every page says messages are not for emergencies; bad input is shown
// beside its field with nothing sent; Walter cannot open her conversation.
func TestPatientMessagesPages(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h, _, pools := messagesHarness(t, db)
		h.signIn(t, "maria@example.com")
		res, page := h.get(t, "/messages")
		if res.StatusCode != 200 || !strings.Contains(page, "No messages yet") || !strings.Contains(page, "not for emergencies") ||
			!regexp.MustCompile(`<a class="cf-recordnav__link" href="/messages" aria-current="page">`).MatchString(page) {
			t.Fatalf("GET /messages = %d:\n%s", res.StatusCode, page)
		}
		_, form := h.get(t, "/messages/new")
		for _, want := range []string{"Dr. Patel&#39;s team", "Billing", "Usually answers within 2 days.", "not for emergencies"} {
			if !strings.Contains(form, want) {
				t.Errorf("the new message form lacks %q", want)
			}
		}
		if strings.Contains(form, "Dr. Nobody") {
			t.Error("Maria is offered the team of a clinician who does not care for her")
		}

		for _, bad := range []struct {
			values url.Values
			want   string
		}{
			{url.Values{"pool": {pools["Billing"]}, "subject": {"Bill"}, "text": {"  "}}, "Write a message before sending it."},
			{url.Values{"pool": {pools["Billing"]}, "subject": {"Bill"}, "text": {strings.Repeat("x", 10001)}}, "up to 10,000 characters"},
			{url.Values{"pool": {pools["Billing"]}, "subject": {""}, "text": {"Hi"}}, "Give the message a subject"},
			{url.Values{"pool": {pools["Dr. Nobody's team"]}, "subject": {"Hi"}, "text": {"Hi"}}, "Choose who to write to."},
		} {
			res, page := h.post(t, "/messages/new", bad.values)
			if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, bad.want) || !strings.Contains(page, `role="alert"`) {
				t.Errorf("POST %v = %d, want 422 with %q beside the field", bad.values, res.StatusCode, bad.want)
			}
		}
		// An empty form shows every problem at once.
		if res, page := h.post(t, "/messages/new", url.Values{}); res.StatusCode != http.StatusUnprocessableEntity ||
			!strings.Contains(page, "Choose who to write to.") || !strings.Contains(page, "Give the message a subject") || !strings.Contains(page, "Write a message before sending it.") {
			t.Errorf("an empty form: %d, want 422 with the three problems", res.StatusCode)
		}
		if _, page := h.get(t, "/messages"); !strings.Contains(page, "No messages yet") {
			t.Error("a refused message was sent")
		}

		text := "My knee <script>alert(1)</script> hurts.\nSee https://example.org/knee?a=1&b=2."
		res, _ = h.post(t, "/messages/new", url.Values{"pool": {pools["Dr. Patel's team"]}, "subject": {"Knee <b>pain</b>"}, "text": {text}})
		loc := res.Header.Get("Location")
		if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/messages/") || !strings.HasSuffix(loc, "?done=sent") {
			t.Fatalf("sending: %d to %q", res.StatusCode, loc)
		}
		threadURL := strings.TrimSuffix(loc, "?done=sent")
		_, page = h.get(t, loc)
		for _, want := range []string{"Your message was sent.", "Knee &lt;b&gt;pain&lt;/b&gt;", "&lt;script&gt;alert(1)&lt;/script&gt;",
			`<a href="https://example.org/knee?a=1&amp;b=2" rel="noopener noreferrer nofollow">https://example.org/knee?a=1&amp;b=2</a>.`,
			"Not read by the team yet.", "With Dr. Patel&#39;s team.", "not for emergencies", ">You<"} {
			if !strings.Contains(page, want) {
				t.Errorf("the conversation lacks %q", want)
			}
		}
		if strings.Contains(page, "<script>alert") || strings.Contains(page, "<b>pain") {
			t.Error("markup Maria typed is interpreted")
		}
		if res, page := h.post(t, threadURL, url.Values{"text": {""}}); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "Write a message before sending it.") {
			t.Errorf("an empty answer: %d", res.StatusCode)
		}
		if res, _ := h.post(t, threadURL, url.Values{"text": {"Also my ankle."}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("writing back: %d", res.StatusCode)
		}
		_, page = h.get(t, threadURL)
		if strings.Count(page, ">You<") != 2 || !strings.Contains(page, "Also my ankle.") {
			t.Errorf("the conversation does not hold both of Maria's messages:\n%s", page)
		}
		_, list := h.get(t, "/messages")
		if !strings.Contains(list, "Knee &lt;b&gt;pain&lt;/b&gt;") || !strings.Contains(list, "Dr. Patel&#39;s team") {
			t.Errorf("the list lacks the conversation:\n%s", list)
		}

		// Walter: Maria's conversation is not there for him.
		h.post(t, "/signout", nil)
		h.signIn(t, "walter@example.com")
		if res, page := h.get(t, threadURL); res.StatusCode != 404 || strings.Contains(page, "knee") {
			t.Errorf("Walter opens Maria's conversation: %d", res.StatusCode)
		}
		if res, _ := h.post(t, threadURL, url.Values{"text": {"Hello"}}); res.StatusCode != 404 {
			t.Errorf("Walter writes into Maria's conversation: %d", res.StatusCode)
		}
		if _, page := h.get(t, "/messages"); !strings.Contains(page, "No messages yet") {
			t.Error("Walter's list shows Maria's conversation")
		}
	})
}
