package web

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"carefront/internal/appointments"
	"carefront/internal/audit/audittest"
	"carefront/internal/clinical/store"
	"carefront/internal/demo"
	"carefront/internal/fhir"
	"carefront/internal/identity"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
	"carefront/internal/telehealth"
)

// videoHarness is the booking harness with video visits on. The
// harness's clock (2026-11-23 10:00 UTC) puts Maria's demo video visit
// at 10:10, with Dr. Patel: its waiting room is open.
func videoHarness(t *testing.T, db *sqldb.DB, more ...func(*Video)) (*authHarness, *telehealth.Rooms) {
	t.Helper()
	var rooms *telehealth.Rooms
	h, _ := bookingHarness(t, db, func(o *Options) {
		rooms = &telehealth.Rooms{DB: db, Seal: o.Auth.Keys, Tokens: &telehealth.Tokens{DB: db, Seal: o.Auth.Keys}, Audit: o.Auth.Audit}
		ctx, cancel := context.WithCancel(context.Background())
		r := rooms
		t.Cleanup(func() {
			// Every connection's leave is written before the database goes.
			cctx, done := context.WithTimeout(context.Background(), 10*time.Second)
			defer done()
			r.Close(cctx)
			cancel()
		})
		go rooms.Run(ctx)
		o.Video = &Video{Rooms: rooms, Consents: &telehealth.Consents{Store: store.New(db), Audit: o.Auth.Audit},
			Records: &telehealth.Records{Store: store.New(db), Audit: o.Auth.Audit, Rooms: rooms},
			Guests: &telehealth.Guests{DB: db, Seal: o.Auth.Keys, Audit: o.Auth.Audit, Mail: o.Auth,
				Link: func(code string) string { return o.BaseURL + "/visit-guest?code=" + url.QueryEscape(code) }},
			Window: telehealth.Window{Early: telehealth.DefaultJoinEarly, Grace: telehealth.DefaultJoinGrace}}
		for _, f := range more {
			f(o.Video)
		}
	})
	return h, rooms
}

const videoPath = "/visits/demo-maria-appt-video/video"

var visitConfig = regexp.MustCompile(`data-config="([^"]+)"`)

// visitToken reads the visit token from the visit page.
func visitToken(t *testing.T, page string) string {
	t.Helper()
	m := visitConfig.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no visit on the page:\n%s", page)
	}
	var cfg struct{ Token, WS, Role string }
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &cfg); err != nil || cfg.Token == "" {
		t.Fatalf("config %q: %v", m[1], err)
	}
	return cfg.Token
}

// dialVisit opens the visit's WebSocket with the harness's session and
// the given Origin ("" sends none).
func (h *authHarness) dialVisit(t *testing.T, path, origin string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	hdr := http.Header{}
	if origin != "" {
		hdr.Set("Origin", origin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, res, err := websocket.Dial(ctx, "wss"+strings.TrimPrefix(h.srv.URL, "https")+path, &websocket.DialOptions{HTTPClient: h.client, HTTPHeader: hdr})
	if ws != nil {
		t.Cleanup(func() { ws.CloseNow() })
	}
	return ws, res, err
}

func readType(t *testing.T, ws *websocket.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := ws.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

func hello(t *testing.T, ws *websocket.Conn, token string) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"type": "hello", "token": token})
	if err := ws.Write(context.Background(), websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
}

// TestJoinAVideoVisit: Maria joins her video visit after agreeing to
// video visits once; the page alone may use the camera. Another patient,
// a caregiver without visits, a clinician not on the visit, a WebSocket
// from another origin or none, a replayed token and a join outside the
// window are each refused, and audited; nothing of the visit is shown.
func TestJoinAVideoVisit(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h, rooms := videoHarness(t, db)
		h.account(t, "linda@example.com", identity.Person, "", "")
		h.grant(t, demo.Maria, "linda@example.com", "messages")
		h.staff(t, "patel@example.org", "clinician", "Anika Patel", "demo-dr-patel")
		h.staff(t, "nguyen@example.org", "clinician", "Thao Nguyen", "demo-dr-nguyen")

		h.signIn(t, "maria@example.com")
		if _, page := h.get(t, "/visits/demo-maria-appt-video"); !strings.Contains(page, `href="`+videoPath+`"`) || !strings.Contains(page, "Join video visit") {
			t.Fatalf("the visit card offers no join:\n%s", page)
		}
		res, page := h.get(t, videoPath)
		if res.StatusCode != 200 || !strings.Contains(page, "I agree to have visits by video") || strings.Contains(page, "data-config") {
			t.Fatalf("first join asks for consent, and nothing else: %d\n%s", res.StatusCode, page)
		}
		res, _ = h.post(t, videoPath+"/consent", url.Values{})
		if res.StatusCode != 422 {
			t.Errorf("consent without the box: %d, want 422", res.StatusCode)
		}
		if res, _ = h.post(t, videoPath+"/consent", url.Values{"agree": {"yes"}}); res.StatusCode != 303 {
			t.Fatalf("consent: %d", res.StatusCode)
		}
		if at, err := (&telehealth.Consents{Store: store.New(db)}).Agreed(context.Background(), demo.Maria); err != nil || at.IsZero() {
			t.Fatalf("Maria's consent to video visits is not in her record: %v %v", at, err)
		}
		if at, _ := (&telehealth.Consents{Store: store.New(db)}).Agreed(context.Background(), demo.Walter); !at.IsZero() {
			t.Fatal("Walter agreed to video visits by Maria's hand")
		}
		res, page = h.get(t, videoPath)
		if res.StatusCode != 200 || !strings.Contains(page, "not recorded") || !strings.Contains(page, "The clinic&#39;s number is 555-0100.") {
			t.Fatalf("the visit page: %d\n%s", res.StatusCode, page)
		}
		if pp := res.Header.Get("Permissions-Policy"); !strings.Contains(pp, "camera=(self)") || !strings.Contains(pp, "microphone=(self)") {
			t.Errorf("the visit page's Permissions-Policy: %q", pp)
		}
		if res, _ := h.get(t, "/visits"); !strings.Contains(res.Header.Get("Permissions-Policy"), "camera=()") {
			t.Error("another page allows the camera")
		}
		token := visitToken(t, page)

		// Cross-origin and origin-less connections are refused before
		// anything else.
		for _, origin := range []string{"https://evil.example", ""} {
			_, res, err := h.dialVisit(t, videoPath+"/ws", origin)
			if err == nil || res == nil || res.StatusCode != 403 {
				t.Errorf("a WebSocket from origin %q: %v", origin, err)
			}
		}
		base := h.srv.URL
		ws, _, err := h.dialVisit(t, videoPath+"/ws", base)
		if err != nil {
			t.Fatal(err)
		}
		hello(t, ws, token)
		if m := readType(t, ws); m["type"] != "welcome" || m["state"] != telehealth.StateWaiting || m["role"] != telehealth.RolePatient {
			t.Fatalf("Maria's welcome: %v", m)
		}
		// The same token again, from a second connection: refused.
		again, _, err := h.dialVisit(t, videoPath+"/ws", base)
		if err != nil {
			t.Fatal(err)
		}
		hello(t, again, token)
		if m := readType(t, again); m["type"] != "error" || m["code"] != "token" {
			t.Fatalf("a replayed token: %v", m)
		}

		// Dr. Patel is on the visit; Dr. Nguyen (on Maria's care team)
		// is not.
		patel := h.fresh()
		patel.signIn(t, "patel@example.org")
		rooms.Beat(context.Background()) // the heartbeat, after the sign-in moved the test clock
		if _, page := patel.get(t, "/staff/visits"); !strings.Contains(page, "1 waiting") || !strings.Contains(page, videoPath+"?for=demo-maria") {
			t.Fatalf("today's video visits:\n%s", page)
		}
		res, page = patel.get(t, videoPath+"?for=demo-maria")
		if res.StatusCode != 200 || !strings.Contains(page, "End visit for everyone") {
			t.Fatalf("the clinician's visit page: %d\n%s", res.StatusCode, page)
		}
		pws, _, err := patel.dialVisit(t, videoPath+"/ws?for=demo-maria", base)
		if err != nil {
			t.Fatal(err)
		}
		hello(t, pws, visitToken(t, page))
		if m := readType(t, pws); m["type"] != "welcome" || m["role"] != telehealth.RoleClinician {
			t.Fatalf("Dr. Patel's welcome: %v", m)
		}

		refused := func(hh *authHarness, path string, want int, what string) {
			t.Helper()
			res, page := hh.get(t, path)
			if res.StatusCode != want || strings.Contains(page, "data-config") {
				t.Errorf("%s: %d, want %d", what, res.StatusCode, want)
			}
			_, wres, err := hh.dialVisit(t, strings.Replace(path, "/video", "/video/ws", 1), base)
			if err == nil || wres == nil || wres.StatusCode < 400 {
				t.Errorf("%s: the WebSocket opened", what)
			}
		}
		nguyen := h.fresh()
		nguyen.signIn(t, "nguyen@example.org")
		refused(nguyen, videoPath+"?for=demo-maria", 403, "a clinician not on the visit")
		walter := h.fresh()
		walter.signIn(t, "walter@example.com")
		refused(walter, videoPath, 404, "another patient")
		linda := h.fresh()
		linda.signIn(t, "linda@example.com")
		refused(linda, videoPath+"?for=demo-maria", 404, "a caregiver whose grant has no visits")

		// Outside the window: before it opens and after it closes.
		h.clock.Add(-time.Hour)
		res, page = h.get(t, videoPath)
		if res.StatusCode != 200 || !strings.Contains(page, "The waiting room opens at") || strings.Contains(page, "data-config") {
			t.Errorf("an hour early: %d", res.StatusCode)
		}
		h.clock.Add(3 * time.Hour)
		h.signIn(t, "maria@example.com") // the session ended meanwhile
		refused(h, videoPath, 410, "two hours late")

		events := strings.Join(audittest.Events(t, db), "\n")
		for _, want := range []string{`"cross-origin"`, `"token-replayed"`, `"join-not-on-visit"`, `"join-over"`, `"telehealth-consent"`, `"code":"join"`} {
			if !strings.Contains(events, want) {
				t.Errorf("the audit has no %s", want)
			}
		}
	})
}

// TestWriteBackAVideoVisit: only the clinician on the visit writes it
// back, once, after it ended; bad input changes nothing. Maria then
// reads the summary and tasks and answers the survey once; Walter sees
// none of it.
func TestWriteBackAVideoVisit(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h, _ := videoHarness(t, db)
		h.staff(t, "patel@example.org", "clinician", "Anika Patel", "demo-dr-patel")
		h.staff(t, "nguyen@example.org", "clinician", "Thao Nguyen", "demo-dr-nguyen")
		wrap := "/staff/visits/demo-maria-appt-video/wrapup?for=demo-maria"
		good := url.Values{"summary": {"Keep walking.\nTake metformin with dinner."}, "task": {"get-labs"}, "other": {"Check your feet"}}

		patel := h.fresh()
		patel.signIn(t, "patel@example.org")
		if res, _ := patel.post(t, wrap, good); res.StatusCode != 409 {
			t.Errorf("before the visit ended: %d, want 409", res.StatusCode)
		}
		// The visit: Maria waits, Dr. Patel lets her in, then ends it.
		h.signIn(t, "maria@example.com")
		h.post(t, videoPath+"/consent", url.Values{"agree": {"yes"}})
		_, page := h.get(t, videoPath)
		mws, _, err := h.dialVisit(t, videoPath+"/ws", h.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		hello(t, mws, visitToken(t, page))
		readType(t, mws) // welcome: waiting
		_, page = patel.get(t, videoPath+"?for=demo-maria")
		ws, _, err := patel.dialVisit(t, videoPath+"/ws?for=demo-maria", h.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		hello(t, ws, visitToken(t, page))
		var waiting []any
		for len(waiting) == 0 {
			if m := readType(t, ws); m["type"] == "waiting" {
				waiting = m["list"].([]any)
			}
		}
		b, _ := json.Marshal(map[string]any{"type": "admit", "who": waiting[0].(map[string]any)["id"]})
		ws.Write(context.Background(), websocket.MessageText, b)
		for m := readType(t, mws); m["type"] != "admitted"; m = readType(t, mws) {
		}
		b, _ = json.Marshal(map[string]string{"type": "end"})
		ws.Write(context.Background(), websocket.MessageText, b)
		for m := readType(t, ws); m["type"] != "ended"; m = readType(t, ws) {
		}

		nguyen := h.fresh()
		nguyen.signIn(t, "nguyen@example.org")
		if res, _ := nguyen.post(t, wrap, good); res.StatusCode != 403 {
			t.Errorf("a clinician not on the visit: %d, want 403", res.StatusCode)
		}
		h.signIn(t, "maria@example.com")
		if res, _ := h.post(t, wrap, good); res.StatusCode != 403 {
			t.Errorf("the patient writing back: %d", res.StatusCode)
		}
		for what, form := range map[string]url.Values{
			"no summary":   {"summary": {"  "}},
			"unknown task": {"summary": {"ok"}, "task": {"prescribe-opioids"}},
			"long task":    {"summary": {"ok"}, "other": {strings.Repeat("x", 201)}},
		} {
			if res, _ := patel.post(t, wrap, form); res.StatusCode != 422 {
				t.Errorf("%s: %d, want 422", what, res.StatusCode)
			}
		}
		if _, err := store.New(db).Read(context.Background(), "Encounter", telehealth.EncounterID("demo-maria-appt-video")); err == nil {
			t.Fatal("bad input wrote an Encounter")
		}
		if res, _ := patel.post(t, wrap, good); res.StatusCode != 303 {
			t.Fatalf("write-back: %d", res.StatusCode)
		}
		if res, _ := patel.post(t, wrap, good); res.StatusCode != 409 {
			t.Errorf("a second write-back: %d, want 409", res.StatusCode)
		}
		enc, err := store.New(db).Read(context.Background(), "Encounter", telehealth.EncounterID("demo-maria-appt-video"))
		if err != nil || !strings.Contains(string(enc.Raw), `"status":"finished"`) || !strings.Contains(string(enc.Raw), `"code":"VR"`) {
			t.Fatalf("the Encounter: %v %s", err, enc.Raw)
		}

		_, page = h.get(t, "/visits/demo-maria-appt-video")
		for _, want := range []string{"After your visit", "Take metformin with dinner.", "Get the lab tests your clinician ordered", "Check your feet", "Done"} {
			if !strings.Contains(page, want) {
				t.Errorf("Maria's visit page lacks %q", want)
			}
		}
		if res, _ := h.post(t, "/visits/demo-maria-appt-video/survey", url.Values{"see-hear": {"9"}}); res.StatusCode != 422 {
			t.Errorf("an answer not offered: %d, want 422", res.StatusCode)
		}
		if res, _ := h.post(t, "/visits/demo-maria-appt-video/survey", url.Values{"see-hear": {"4"}, "again": {"yes"}}); res.StatusCode != 303 {
			t.Errorf("the survey: %d", res.StatusCode)
		}
		if res, _ := h.post(t, "/visits/demo-maria-appt-video/survey", url.Values{"see-hear": {"1"}}); res.StatusCode != 409 {
			t.Errorf("the survey again: %d, want 409", res.StatusCode)
		}

		walter := h.fresh()
		walter.signIn(t, "walter@example.com")
		if res, page := walter.get(t, "/visits/demo-maria-appt-video"); res.StatusCode != 404 || strings.Contains(page, "metformin") {
			t.Errorf("Walter and Maria's visit: %d", res.StatusCode)
		}
		if res, _ := walter.post(t, "/visits/demo-maria-appt-video/survey", url.Values{"see-hear": {"1"}}); res.StatusCode != 404 {
			t.Errorf("Walter answering Maria's survey: %d, want 404", res.StatusCode)
		}
	})
}

// TestVideoPageWithLiveKit: with LiveKit as the media engine the visit
// page loads the vendored LiveKit client and may connect to the LiveKit
// server, and only there; other pages may not.
func TestVideoPageWithLiveKit(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	h, _ := videoHarness(t, db, func(v *Video) {
		v.Provider, v.ConnectTo = "livekit", []string{"wss://livekit.clinic.example", "https://livekit.clinic.example"}
	})
	h.signIn(t, "maria@example.com")
	h.post(t, videoPath+"/consent", url.Values{"agree": {"yes"}})
	res, page := h.get(t, videoPath)
	if !strings.Contains(page, "livekit/livekit-client.umd.js") || !strings.Contains(html.UnescapeString(page), `"provider":"livekit"`) {
		t.Fatalf("the visit page does not use LiveKit:\n%s", page)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' wss://livekit.clinic.example https://livekit.clinic.example;") {
		t.Errorf("the visit page's CSP: %q", csp)
	}
	if res, _ := h.get(t, "/visits"); strings.Contains(res.Header.Get("Content-Security-Policy"), "livekit") {
		t.Error("another page may connect to LiveKit")
	}
	if res, _ := h.get(t, "/static/x/livekit/livekit-client.umd.js"); res.StatusCode != 200 {
		t.Errorf("the LiveKit client: %d", res.StatusCode)
	}
}

var guestLink = regexp.MustCompile(`https://[^\s]+/visit-guest\?code=([A-Za-z0-9_%-]+)`)

// TestVideoGuests: Maria invites an interpreter by email; the mail names
// nobody; the link opens a page that does not spend it (a mail scanner
// may fetch it); joining spends it once and gives that browser the
// visit alone, in the waiting room, with nothing of the record. A second
// use, a bad address, a third guest, another patient's invitation and a
// guest after the visit are refused.
func TestVideoGuests(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h, rooms := videoHarness(t, db)
		h.signIn(t, "maria@example.com")
		h.post(t, videoPath+"/consent", url.Values{"agree": {"yes"}})
		if res, _ := h.post(t, videoPath+"/guests", url.Values{"guest-name": {"Ana"}, "guest-email": {"not an address"}}); res.StatusCode != 422 {
			t.Errorf("a bad address: %d, want 422", res.StatusCode)
		}
		res, _ := h.post(t, videoPath+"/guests", url.Values{"guest-name": {"Ana (interpreter)"}, "guest-email": {"ana@example.org"}})
		if res.StatusCode != 303 {
			t.Fatalf("invite: %d", res.StatusCode)
		}
		m := h.mailWith(t, "video visit")
		if !strings.Contains(m.To, "ana@example.org") || strings.Contains(m.Text, "Maria") || strings.Contains(m.Text, "Ortega") || strings.Contains(m.Text, "Patel") {
			t.Errorf("the invitation: to %q\n%s", m.To, m.Text)
		}
		code := guestLink.FindStringSubmatch(m.Text)
		if code == nil {
			t.Fatalf("no link in:\n%s", m.Text)
		}
		h.post(t, videoPath+"/guests", url.Values{"guest-name": {"Luis"}, "guest-email": {"luis@example.org"}})
		if res, _ := h.post(t, videoPath+"/guests", url.Values{"guest-name": {"Third"}, "guest-email": {"third@example.org"}}); res.StatusCode != 422 {
			t.Errorf("a third guest: %d, want 422", res.StatusCode)
		}
		walter := h.fresh()
		walter.signIn(t, "walter@example.com")
		if res, _ := walter.post(t, videoPath+"/guests", url.Values{"guest-name": {"X"}, "guest-email": {"x@example.org"}}); res.StatusCode != 404 {
			t.Errorf("Walter inviting to Maria's visit: %d, want 404", res.StatusCode)
		}

		guest := h.fresh() // the interpreter's browser, with no account
		c, _ := url.QueryUnescape(code[1])
		if res, page := guest.get(t, "/visit-guest?code="+url.QueryEscape(c)); res.StatusCode != 200 || !strings.Contains(page, "Join the visit") {
			t.Fatalf("the landing page: %d", res.StatusCode)
		}
		res, _ = guest.post(t, "/visit-guest", url.Values{"code": {c}})
		if res.StatusCode != 303 {
			t.Fatalf("joining as a guest: %d", res.StatusCode)
		}
		res, page := guest.get(t, "/visit-guest/visit")
		if res.StatusCode != 200 || strings.Contains(page, "Maria") || strings.Contains(page, "Ortega") || strings.Contains(page, `href="/results"`) {
			t.Fatalf("the guest's page: %d\n%s\n%v", res.StatusCode, page, res.Header)
		}
		tok := visitToken(t, page)
		ws, _, err := guest.dialVisit(t, "/visit-guest/ws", h.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		hello(t, ws, tok)
		if m := readType(t, ws); m["type"] != "welcome" || m["state"] != telehealth.StateWaiting || m["role"] != telehealth.RoleGuest {
			t.Fatalf("the guest's welcome: %v", m)
		}
		if _, _, err := guest.dialVisit(t, "/visit-guest/ws", "https://evil.example"); err == nil {
			t.Error("a guest WebSocket from another origin opened")
		}

		again := h.fresh()
		if res, _ := again.post(t, "/visit-guest", url.Values{"code": {c}}); res.StatusCode != 410 {
			t.Errorf("the link used twice: %d, want 410", res.StatusCode)
		}
		if res, _ := again.get(t, "/visit-guest/visit"); res.StatusCode != 410 {
			t.Errorf("a browser without the guest's session: %d, want 410", res.StatusCode)
		}
		h.clock.Add(2 * time.Hour)
		rooms.Beat(context.Background())
		if res, _ := guest.get(t, "/visit-guest/visit"); res.StatusCode != 410 {
			t.Errorf("the guest after the visit: %d, want 410", res.StatusCode)
		}
		events := strings.Join(audittest.Events(t, db), "\n")
		for _, want := range []string{`"code":"guest-invite"`, `"guest-link-used"`, `"Guest/`} {
			if !strings.Contains(events, want) {
				t.Errorf("the audit has no %s", want)
			}
		}
	})
}

// TestParentAndATeensSensitiveVisit: Dana holds full access to her son
// Sam's record (he is 15). She may join his ordinary video visit, but a
// video visit labelled sexual and reproductive health is hidden from
// her (the age policy), so its page and WebSocket answer as for a visit
// that does not exist.
func TestParentAndATeensSensitiveVisit(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	h, _ := videoHarness(t, db)
	st := store.New(db)
	start := h.clock.Now().Add(5 * time.Minute).UTC().Format(time.RFC3339)
	end := h.clock.Now().Add(35 * time.Minute).UTC().Format(time.RFC3339)
	for id, meta := range map[string]string{
		"sam-video-plain":     ``,
		"sam-video-sensitive": `"meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"SEX"},{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"R"}]},`,
	} {
		raw := `{"resourceType":"Appointment","id":"` + id + `",` + meta + `"status":"booked","start":"` + start + `","end":"` + end + `",
			"extension":[{"url":"` + appointments.VisitModeExt + `","valueCode":"video"}],
			"participant":[{"actor":{"reference":"Patient/` + demo.Sam + `"},"status":"accepted"},{"actor":{"reference":"Practitioner/demo-dr-okafor"},"status":"accepted"},
			{"actor":{"reference":"Location/demo-loc-video"},"status":"accepted"}]}`
		b := &fhir.Bundle{ResourceType: "Bundle", Type: "transaction", Entry: []*fhir.Entry{{Resource: []byte(raw),
			Request: &fhir.EntryRequest{Method: "PUT", URL: "Appointment/" + id}}}}
		if _, err := st.Process(context.Background(), b, store.BundleOptions{Import: true}); err != nil {
			t.Fatal(err)
		}
	}
	h.account(t, "dana@example.com", identity.Person, "", "")
	h.grant(t, demo.Sam, "dana@example.com", "full")
	h.signIn(t, "dana@example.com")
	if res, page := h.get(t, "/visits/sam-video-plain/video?for="+demo.Sam); res.StatusCode != 200 || !strings.Contains(page, "I agree to have visits by video") {
		t.Fatalf("Dana and Sam's ordinary video visit: %d", res.StatusCode)
	}
	res, page := h.get(t, "/visits/sam-video-sensitive/video?for="+demo.Sam)
	if res.StatusCode != 404 || strings.Contains(page, "data-config") || strings.Contains(page, "agree") {
		t.Errorf("Dana and Sam's sensitive video visit: %d", res.StatusCode)
	}
	if _, wres, err := h.dialVisit(t, "/visits/sam-video-sensitive/video/ws?for="+demo.Sam, h.srv.URL); err == nil || wres == nil || wres.StatusCode != 404 {
		t.Errorf("Dana's WebSocket to the sensitive visit: %v", err)
	}
}
