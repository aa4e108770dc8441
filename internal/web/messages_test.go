package web

import (
	"bytes"
	"carefront/internal/access"
	"context"
	"image"
	"image/jpeg"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"carefront/internal/audit/audittest"
	"carefront/internal/demo"
	"carefront/internal/identity"
	"carefront/internal/messaging"
	"carefront/internal/ratelimit"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// messagesHarness is the record harness with messaging on: Dr. Patel's
// team (offered to the patients she cares for) and Billing (offered to
// everyone), each answered by one staff member; Maria and Walter have
// accounts.
func messagesHarness(t *testing.T, db *sqldb.DB, more ...func(*Options)) (*authHarness, *messaging.Store, map[string]string) {
	t.Helper()
	var ms *messaging.Store
	h := newAuthHarness(t, db, withRecords(t, db), func(o *Options) {
		ms = &messaging.Store{DB: db, Keys: o.Auth.Keys, Audit: o.Auth.Audit, Notices: o.Auth}
		o.Messages = ms
		for _, f := range more {
			f(o)
		}
	})
	h.account(t, "maria@example.com", identity.Person, demo.Maria, "")
	h.account(t, "walter@example.com", identity.Person, demo.Walter, "")
	for _, st := range []struct{ email, role, name string }{{"patel@clinic.example", "clinician", "Anika Patel"}, {"billing@clinic.example", "support", "Jordan Lee"}} {
		hash, _ := identity.HashPassword("a long enough passphrase", identity.Params{Memory: 8 * 1024, Time: 1, Threads: 1})
		a := &identity.Account{Kind: identity.Staff, Email: st.email, PasswordHash: hash, StaffRole: st.role, DisplayName: st.name}
		if err := h.store.CreateAccount(context.Background(), a); err != nil {
			t.Fatal(err)
		}
		if err := h.store.SetTOTPSecret(context.Background(), a.ID, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"); err != nil {
			t.Fatal(err)
		}
	}
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

// TestInbox: Dr. Patel finds Maria's message in her inbox, opens it (Maria
// then sees it was read), answers (signed with her name), assigns it to
// herself and sets it aside as done; the support staff member of another
// pool finds none of it; a patient cannot reach the inbox; every opening
// is in the audit trail with Dr. Patel as agent and Maria as subject.
func TestInbox(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h, _, pools := messagesHarness(t, db)
		h.signIn(t, "maria@example.com")
		res, _ := h.post(t, "/messages/new", url.Values{"pool": {pools["Dr. Patel's team"]}, "subject": {"Knee pain"}, "text": {"My knee hurts."}})
		thread := strings.TrimSuffix(res.Header.Get("Location"), "?done=sent")
		id := strings.TrimPrefix(thread, "/messages/")
		if res, _ := h.get(t, "/staff/inbox"); res.StatusCode != 403 {
			t.Errorf("Maria reaches the inbox: %d", res.StatusCode)
		}
		h.post(t, "/signout", nil)

		h.signIn(t, "billing@clinic.example")
		if _, page := h.get(t, "/staff/inbox"); strings.Contains(page, "Knee pain") {
			t.Error("billing's inbox shows the thread of Dr. Patel's team")
		}
		if res, _ := h.get(t, "/staff/inbox/"+id); res.StatusCode != 404 {
			t.Errorf("billing opens Dr. Patel's thread: %d", res.StatusCode)
		}
		if res, _ := h.post(t, "/staff/inbox/"+id, url.Values{"text": {"Hi"}}); res.StatusCode != 404 {
			t.Errorf("billing answers Dr. Patel's thread: %d", res.StatusCode)
		}
		h.post(t, "/signout", nil)

		h.signIn(t, "patel@clinic.example")
		_, inbox := h.get(t, "/staff/inbox")
		for _, want := range []string{"Knee pain", "Dr. Patel&#39;s team", demo.Maria, "Waiting for an answer since", "(answer by"} {
			if !strings.Contains(inbox, want) {
				t.Errorf("Dr. Patel's inbox lacks %q", want)
			}
		}
		_, page := h.get(t, "/staff/inbox/"+id)
		if !strings.Contains(page, "My knee hurts.") || !strings.Contains(page, "The patient") {
			t.Errorf("the thread as staff see it:\n%s", page)
		}
		if res, page := h.post(t, "/staff/inbox/"+id, url.Values{"text": {" "}}); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "Write a message before sending it.") {
			t.Errorf("an empty answer: %d", res.StatusCode)
		}
		for _, step := range []struct{ path, want string }{
			{"/staff/inbox/" + id, "/staff/inbox/" + id + "?done=sent"},
			{"/staff/inbox/" + id + "/assign", "/staff/inbox/" + id + "?done=assigned"},
			{"/staff/inbox/" + id + "/done", "/staff/inbox?done=closed"},
		} {
			res, _ := h.post(t, step.path, url.Values{"text": {"Please come in on Friday."}})
			if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != step.want {
				t.Errorf("POST %s = %d to %q, want %q", step.path, res.StatusCode, res.Header.Get("Location"), step.want)
			}
		}
		if _, page := h.get(t, "/staff/inbox?done=closed"); !strings.Contains(page, "<dd>Done</dd>") || !strings.Contains(page, "set aside as done") {
			t.Log(grep(page, "Done"))
			t.Error("the thread is not shown as done")
		}
		h.post(t, "/signout", nil)

		h.signIn(t, "maria@example.com")
		_, page = h.get(t, thread)
		for _, want := range []string{"Please come in on Friday.", "Anika Patel, Dr. Patel&#39;s team", "Read by the team on"} {
			if !strings.Contains(page, want) {
				t.Errorf("Maria's conversation lacks %q", want)
			}
		}
		opened := 0
		for _, e := range audittest.Events(t, db) {
			if strings.Contains(e, `"read"`) && strings.Contains(e, "Anika Patel") && strings.Contains(e, "Patient/"+demo.Maria) {
				opened++
			}
		}
		if opened < 2 {
			t.Errorf("%d audited openings by Dr. Patel, want at least 2", opened)
		}
		// The team sees that Maria read the answer.
		h.post(t, "/signout", nil)
		h.signIn(t, "patel@clinic.example")
		if _, page := h.get(t, "/staff/inbox/"+id); !strings.Contains(page, "Read by the patient&#39;s side on") {
			t.Errorf("the team's view does not say Maria read the answer:\n%s", grep(page, "Read"))
		}
	})
}

// mariaWritesToBilling signs Maria in, sends a message to the Billing
// pool, signs her out and returns the thread's id.
func mariaWritesToBilling(t *testing.T, h *authHarness, pools map[string]string) string {
	t.Helper()
	h.signIn(t, "maria@example.com")
	res, _ := h.post(t, "/messages/new", url.Values{"pool": {pools["Billing"]}, "subject": {"My bill"}, "text": {"Is the March visit covered?"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("Maria writes to Billing: %d", res.StatusCode)
	}
	h.post(t, "/signout", nil)
	return strings.TrimPrefix(strings.TrimSuffix(res.Header.Get("Location"), "?done=sent"), "/messages/")
}

// TestInboxNeedsTheSecondFactor: a staff member who has given only their
// password is sent to the second step from every inbox page and action,
// and nothing of the thread is shown or changed.
func TestInboxNeedsTheSecondFactor(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h, _, pools := messagesHarness(t, db)
		id := mariaWritesToBilling(t, h, pools)

		staff := h.fresh()
		if res, _ := staff.post(t, "/signin", url.Values{"email": {"billing@clinic.example"}, "password": {"a long enough passphrase"}}); res.StatusCode != 303 {
			t.Fatalf("password step: %d", res.StatusCode)
		}
		for _, step := range []struct{ method, path string }{
			{"GET", "/staff/inbox"}, {"GET", "/staff/inbox/" + id},
			{"POST", "/staff/inbox/" + id}, {"POST", "/staff/inbox/" + id + "/assign"}, {"POST", "/staff/inbox/" + id + "/done"},
		} {
			var res *http.Response
			var page string
			if step.method == "GET" {
				res, page = staff.get(t, step.path)
			} else {
				res, page = staff.post(t, step.path, url.Values{"text": {"Answered on one factor"}})
			}
			if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/signin/verify" || strings.Contains(page, "March visit") {
				t.Errorf("%s %s on one factor: %d to %q", step.method, step.path, res.StatusCode, res.Header.Get("Location"))
			}
		}
		var n int
		db.ReadOne(context.Background(), func(tx *sqldb.Tx) error {
			return tx.QueryRow(context.Background(), "SELECT COUNT(*) FROM message WHERE thread_id = ?", id).Scan(&n)
		})
		if n != 1 {
			t.Errorf("%d messages in the thread, want Maria's one", n)
		}
	})
}

// TestStaffSeeWhoWrote: a support staff member of the Billing pool, who
// has no care relationship, sees the name and birth date of the patient
// who wrote to the pool, in the inbox and the thread; each read of the
// Patient is audited with them and the pool-member reason; the rest of
// the record stays closed to them.
func TestStaffSeeWhoWrote(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h, _, pools := messagesHarness(t, db)
		id := mariaWritesToBilling(t, h, pools)

		h.signIn(t, "billing@clinic.example")
		_, inbox := h.get(t, "/staff/inbox")
		_, thread := h.get(t, "/staff/inbox/"+id)
		for name, page := range map[string]string{"inbox": inbox, "thread": thread} {
			if !strings.Contains(page, "Maria Ortega-Demo, born ") || !strings.Contains(page, "(record "+demo.Maria+")") {
				t.Errorf("the %s does not name the patient:\n%s", name, grep(page, "Patient"))
			}
		}
		reads := 0
		for _, e := range audittest.Events(t, db) {
			if strings.Contains(e, `"Patient/`+demo.Maria+`"`) && strings.Contains(e, "Jordan Lee") && strings.Contains(e, access.ReasonPoolMember) && strings.Contains(e, `"code":"read"`) {
				reads++
			}
		}
		if reads < 2 {
			t.Errorf("%d audited reads of Maria's name by Jordan Lee, want 2", reads)
		}
		if res, _ := h.get(t, "/?for="+demo.Maria); res.StatusCode == 200 {
			t.Errorf("the billing pool's member opens Maria's record: %d", res.StatusCode)
		}
	})
}

// TestCaregiverMessages: a caregiver whose grant holds messages writes to
// the patient's care team on their behalf, and both see who wrote; one
// whose grant does not (medicines and visits only) has no Messages in the
// navigation and is refused the messages pages, with nothing sent.
func TestCaregiverMessages(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h, _, pools := messagesHarness(t, db)
		h.account(t, "linda@example.com", identity.Person, "", "")
		h.account(t, "dana@example.com", identity.Person, "", "")
		h.grant(t, demo.Walter, "linda@example.com", "medications-visits")
		h.grant(t, demo.Walter, "dana@example.com", "messages")

		h.signIn(t, "linda@example.com")
		if _, home := h.get(t, "/?for=demo-walter"); strings.Contains(home, `href="/messages`) {
			t.Error("Linda, without messages in her grant, is offered Messages")
		}
		for _, p := range []string{"/messages?for=demo-walter", "/messages/new?for=demo-walter"} {
			if res, _ := h.get(t, p); res.StatusCode != 403 {
				t.Errorf("Linda GET %s = %d, want 403", p, res.StatusCode)
			}
		}
		if res, _ := h.post(t, "/messages/new?for=demo-walter", url.Values{"pool": {pools["Billing"]}, "subject": {"Hi"}, "text": {"Hi"}}); res.StatusCode != 403 {
			t.Errorf("Linda writes for Walter: %d, want 403", res.StatusCode)
		}
		h.post(t, "/signout", nil)

		h.signIn(t, "dana@example.com")
		_, home := h.get(t, "/?for=demo-walter")
		if !strings.Contains(home, `href="/messages?for=demo-walter"`) {
			t.Error("Dana, with messages in her grant, is not offered Messages")
		}
		res, _ := h.post(t, "/messages/new?for=demo-walter", url.Values{"pool": {pools["Billing"]}, "subject": {"March bill"}, "text": {"Why two charges?"}})
		loc := res.Header.Get("Location")
		if res.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "for=demo-walter") {
			t.Fatalf("Dana writes for Walter: %d to %q", res.StatusCode, loc)
		}
		_, page := h.get(t, loc)
		if !strings.Contains(page, "You, on Walter Brooks-Demo&#39;s behalf") {
			t.Errorf("Dana's view of the conversation does not say she wrote on Walter's behalf")
		}
		h.post(t, "/signout", nil)

		h.signIn(t, "walter@example.com")
		thread := strings.Split(strings.TrimPrefix(loc, "/messages/"), "?")[0]
		_, page = h.get(t, "/messages/"+thread)
		if !strings.Contains(page, "dana@example.com, your caregiver, on your behalf") || !strings.Contains(page, "Why two charges?") {
			t.Errorf("Walter's view does not name the caregiver who wrote on his behalf")
		}
		h.post(t, "/signout", nil)

		h.signIn(t, "billing@clinic.example")
		if _, page := h.get(t, "/staff/inbox/"+thread); !strings.Contains(page, "dana@example.com, a caregiver, on the patient&#39;s behalf") {
			t.Errorf("the billing team's view does not name the caregiver:\n%s", grep(page, "behalf"))
		}
	})
}

// postFile posts a multipart message form with one file.
func (h *authHarness) postFile(t *testing.T, path string, fields map[string]string, name string, data []byte) (*http.Response, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("attachment", name)
	fw.Write(data)
	mw.Close()
	req, _ := http.NewRequest("POST", h.srv.URL+path, &b)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res, body(t, res)
}

// TestMessageFiles: Maria sends a photo with a message; it is listed in the
// conversation and downloads as a file the browser will not run, for her
// and for her clinician's team, never for Walter; a renamed program, an
// oversized file and a body over the route's limit are refused with the
// reason beside the field (or 413), and nothing is sent.
func TestMessageFiles(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h, _, pools := messagesHarness(t, db)
		h.signIn(t, "maria@example.com")
		img := image.NewRGBA(image.Rect(0, 0, 20, 20))
		var jpg bytes.Buffer
		jpeg.Encode(&jpg, img, nil)
		fields := map[string]string{"pool": pools["Dr. Patel's team"], "subject": "Rash", "text": "See the photo."}

		for _, bad := range []struct {
			name   string
			data   []byte
			status int
			want   string
		}{
			{"photo.jpg", append([]byte("\x7fELF\x02\x01"), make([]byte, 100)...), 422, "Only photos (JPEG, PNG) and PDF documents can be sent."},
			{"big.pdf", append([]byte("%PDF-1.7\n"), make([]byte, 10<<20)...), 422, "The file is larger than 10 MB."},
			{"huge.pdf", make([]byte, 11<<20), 413, ""},
		} {
			res, page := h.postFile(t, "/messages/new", fields, bad.name, bad.data)
			if res.StatusCode != bad.status || !strings.Contains(page, bad.want) {
				t.Errorf("%s: %d, want %d with %q", bad.name, res.StatusCode, bad.status, bad.want)
			}
		}
		if _, page := h.get(t, "/messages"); !strings.Contains(page, "No messages yet") {
			t.Fatal("a refused message was sent")
		}

		res, _ := h.postFile(t, "/messages/new", fields, "my rash.jpeg", jpg.Bytes())
		loc := res.Header.Get("Location")
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("sending with a photo: %d", res.StatusCode)
		}
		thread := strings.TrimSuffix(loc, "?done=sent")
		_, page := h.get(t, thread)
		link := regexp.MustCompile(`<a href="(` + regexp.QuoteMeta(thread) + `/files/[0-9a-f]{32})">my rash.jpg</a>`).FindStringSubmatch(page)
		if link == nil || !strings.Contains(page, "(photo, 1 KB)") {
			t.Fatalf("the conversation does not list the photo:\n%s", page)
		}
		res, data := h.get(t, link[1])
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/jpeg" || !strings.HasPrefix(res.Header.Get("Content-Disposition"), "attachment;") ||
			!strings.Contains(res.Header.Get("Content-Security-Policy"), "sandbox") || res.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(data, "\xff\xd8\xff") {
			t.Errorf("the download: %d %v", res.StatusCode, res.Header)
		}
		h.post(t, "/signout", nil)

		h.signIn(t, "walter@example.com")
		if res, _ := h.get(t, link[1]); res.StatusCode != 404 {
			t.Errorf("Walter downloads Maria's photo: %d", res.StatusCode)
		}
		h.post(t, "/signout", nil)

		h.signIn(t, "patel@clinic.example")
		id := strings.TrimPrefix(link[1], "/messages/")
		if res, data := h.get(t, "/staff/inbox/"+id); res.StatusCode != 200 || !strings.HasPrefix(data, "\xff\xd8\xff") {
			t.Errorf("Dr. Patel downloads the photo: %d", res.StatusCode)
		}
	})
}

// TestMessageDrafts: Maria saves a new message as a draft, finds it on
// the messages page and in the form again, sends it (the draft is gone);
// an answer's draft comes back in the conversation's form.
func TestMessageDrafts(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h, _, pools := messagesHarness(t, db)
		h.signIn(t, "maria@example.com")
		res, _ := h.post(t, "/messages/new", url.Values{"pool": {pools["Billing"]}, "subject": {"March bill"}, "text": {"I was charged"}, "action": {"draft"}})
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/messages?done=draft" {
			t.Fatalf("saving a draft: %d to %q", res.StatusCode, res.Header.Get("Location"))
		}
		_, list := h.get(t, "/messages?done=draft")
		for _, want := range []string{"Your draft was saved.", "Your unsent message", "March bill", "Continue writing", "No messages yet"} {
			if !strings.Contains(list, want) {
				t.Errorf("the messages page lacks %q", want)
			}
		}
		_, form := h.get(t, "/messages/new")
		if !strings.Contains(form, `value="March bill"`) || !strings.Contains(form, ">I was charged</textarea>") ||
			!regexp.MustCompile(`value="`+pools["Billing"]+`" checked`).MatchString(form) {
			t.Error("the form does not come back with the draft")
		}
		res, _ = h.post(t, "/messages/new", url.Values{"pool": {pools["Billing"]}, "subject": {"March bill"}, "text": {"I was charged twice."}})
		thread := strings.TrimSuffix(res.Header.Get("Location"), "?done=sent")
		if _, list := h.get(t, "/messages"); strings.Contains(list, "Your unsent message") {
			t.Error("the draft is still listed after sending")
		}
		res, _ = h.post(t, thread, url.Values{"text": {"Also in April"}, "action": {"draft"}})
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != thread+"?done=draft" {
			t.Fatalf("saving an answer's draft: %d to %q", res.StatusCode, res.Header.Get("Location"))
		}
		if _, page := h.get(t, thread+"?done=draft"); !strings.Contains(page, ">Also in April</textarea>") || !strings.Contains(page, "Your draft was saved.") {
			t.Error("the conversation's form does not come back with the answer's draft")
		}
	})
}

// TestInboxDraft: Dr. Patel saves an answer as a draft and finds it in the
// conversation's form again; sending it removes it; billing cannot save one
// in her team's thread.
func TestInboxDraft(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h, _, pools := messagesHarness(t, db)
		h.signIn(t, "maria@example.com")
		res, _ := h.post(t, "/messages/new", url.Values{"pool": {pools["Dr. Patel's team"]}, "subject": {"Knee"}, "text": {"It hurts."}})
		id := strings.TrimPrefix(strings.TrimSuffix(res.Header.Get("Location"), "?done=sent"), "/messages/")
		h.post(t, "/signout", nil)

		h.signIn(t, "billing@clinic.example")
		if res, _ := h.post(t, "/staff/inbox/"+id, url.Values{"text": {"x"}, "action": {"draft"}}); res.StatusCode != 404 {
			t.Errorf("billing saves a draft in Dr. Patel's thread: %d", res.StatusCode)
		}
		h.post(t, "/signout", nil)

		h.signIn(t, "patel@clinic.example")
		res, _ = h.post(t, "/staff/inbox/"+id, url.Values{"text": {"Please come in"}, "action": {"draft"}})
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/staff/inbox/"+id+"?done=draft" {
			t.Fatalf("saving a draft: %d to %q", res.StatusCode, res.Header.Get("Location"))
		}
		if _, page := h.get(t, "/staff/inbox/"+id+"?done=draft"); !strings.Contains(page, ">Please come in</textarea>") || !strings.Contains(page, "Your draft was saved.") {
			t.Error("the draft does not come back in the answer form")
		}
		h.post(t, "/staff/inbox/"+id, url.Values{"text": {"Please come in on Friday."}})
		if _, page := h.get(t, "/staff/inbox/"+id); strings.Contains(page, ">Please come in</textarea>") {
			t.Error("the draft outlived the answer")
		}
	})
}

// TestSendingMessagesIsLimited: past the account's budget a message is
// refused with a plain answer beside the text, which is kept, and nothing
// is sent; saving a draft still works; another account has its own budget.
func TestSendingMessagesIsLimited(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h, _, pools := messagesHarness(t, db, func(o *Options) { o.MessageLimiter = ratelimit.New(10.0/3600, 2, 100) })
		h.signIn(t, "maria@example.com")
		form := url.Values{"pool": {pools["Billing"]}, "subject": {"A question about my bill"}, "text": {"Is the March visit covered?"}}
		for i := 0; i < 2; i++ {
			if res, _ := h.post(t, "/messages/new", form); res.StatusCode != 303 {
				t.Fatalf("message %d: %d", i+1, res.StatusCode)
			}
		}
		form.Set("text", "A third question, sent too soon")
		res, page := h.post(t, "/messages/new", form)
		if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" || !strings.Contains(page, "sent many messages in a short time") ||
			!strings.Contains(page, "A third question, sent too soon</textarea>") {
			t.Fatalf("third message: %d (Retry-After %q):\n%s", res.StatusCode, res.Header.Get("Retry-After"), page)
		}
		var threads int
		db.ReadOne(context.Background(), func(tx *sqldb.Tx) error {
			return tx.QueryRow(context.Background(), "SELECT COUNT(*) FROM message_thread WHERE patient_id = ?", demo.Maria).Scan(&threads)
		})
		if threads != 2 {
			t.Errorf("%d conversations, want 2: the refused message was sent", threads)
		}
		form.Set("action", "draft")
		if res, _ := h.post(t, "/messages/new", form); res.StatusCode != 303 {
			t.Errorf("saving a draft past the budget: %d", res.StatusCode)
		}
		h2 := h.fresh()
		h2.signIn(t, "walter@example.com")
		form.Del("action")
		if res, _ := h2.post(t, "/messages/new", form); res.StatusCode != 303 {
			t.Errorf("another account's message: %d", res.StatusCode)
		}
	})
}
