package telehealth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"carefront/internal/audit"
	"carefront/internal/audit/audittest"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
	"carefront/internal/telehealth"
)

// instance is one carefront process's share of the video visits: its
// rooms and a WebSocket endpoint that takes the arrival from the test
// (the web layer's job in carefront).
type instance struct {
	rooms *telehealth.Rooms
	srv   *httptest.Server
}

var arrivals = map[string]telehealth.Arrival{
	"maria":  {Appointment: "appt-1", Patient: "maria", Participant: "Person/acct-maria", Role: telehealth.RolePatient, Name: "Maria"},
	"patel":  {Appointment: "appt-1", Patient: "maria", Participant: "Person/acct-patel", Role: telehealth.RoleClinician, Name: "Dr. Patel"},
	"linda":  {Appointment: "appt-1", Patient: "maria", Participant: "Person/acct-linda", Role: telehealth.RoleCaregiver, Name: "Linda"},
	"walter": {Appointment: "appt-2", Patient: "walter", Participant: "Person/acct-walter", Role: telehealth.RolePatient, Name: "Walter"},
}

func newInstance(t *testing.T, db *sqldb.DB, keys *seal.Keys, aw *audit.Writer) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{rooms: &telehealth.Rooms{DB: db, Seal: keys, Tokens: &telehealth.Tokens{DB: db, Seal: keys}, Audit: aw}}
	done := make(chan struct{})
	go func() { in.rooms.Run(ctx); close(done) }()
	var serving sync.WaitGroup
	in.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serving.Add(1)
		defer serving.Done()
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		in.rooms.Serve(r.Context(), ws, arrivals[r.URL.Query().Get("as")])
	}))
	// The clients close first (their cleanups run before this one);
	// every connection's leave is written before the database goes.
	t.Cleanup(func() { serving.Wait(); in.srv.Close(); cancel(); <-done })
	return in
}

// client is a browser's end of the signalling connection.
type client struct {
	t   *testing.T
	ws  *websocket.Conn
	msg chan map[string]any
	id  string
}

func (in *instance) connect(t *testing.T, as string) *client {
	t.Helper()
	a := arrivals[as]
	tok, err := in.rooms.Tokens.Issue(context.Background(), telehealth.Claim{Appointment: a.Appointment, Participant: a.Participant, Role: a.Role})
	if err != nil {
		t.Fatal(err)
	}
	return in.connectWith(t, as, tok)
}

func (in *instance) connectWith(t *testing.T, as, tok string) *client {
	t.Helper()
	ws, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(in.srv.URL, "http")+"/?as="+as, nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(1 << 20)
	c := &client{t: t, ws: ws, msg: make(chan map[string]any, 64)}
	go func() {
		defer close(c.msg)
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			var m map[string]any
			json.Unmarshal(b, &m)
			c.msg <- m
		}
	}()
	t.Cleanup(func() { ws.CloseNow() })
	c.send(map[string]any{"type": "hello", "token": tok})
	return c
}

func (c *client) send(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	c.sendRaw(b)
}

func (c *client) sendRaw(b []byte) {
	c.t.Helper()
	if err := c.ws.Write(context.Background(), websocket.MessageText, b); err != nil {
		c.t.Fatal(err)
	}
}

// expect waits for the next message of type typ, failing on any other
// type except those in skip.
func (c *client) expect(typ string, skip ...string) map[string]any {
	c.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-c.msg:
			if !ok {
				c.t.Fatalf("closed while waiting for %q", typ)
			}
			if m["type"] == typ {
				return m
			}
			skipped := false
			for _, s := range skip {
				skipped = skipped || m["type"] == s
			}
			if !skipped {
				c.t.Fatalf("want %q, got %v", typ, m)
			}
		case <-timeout:
			c.t.Fatalf("no %q within 10s", typ)
		}
	}
}

// quiet checks nothing but the types in allow arrives for a moment.
func (c *client) quiet(allow ...string) {
	c.t.Helper()
	timeout := time.After(700 * time.Millisecond)
	for {
		select {
		case m, ok := <-c.msg:
			if !ok {
				return
			}
			ok = false
			for _, a := range allow {
				ok = ok || m["type"] == a
			}
			if !ok {
				c.t.Fatalf("want nothing, got %v", m)
			}
		case <-timeout:
			return
		}
	}
}

func (c *client) closed() {
	c.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-c.msg:
			if !ok {
				return
			}
		case <-timeout:
			c.t.Fatal("still open")
		}
	}
}

func (c *client) refusedWith(code string) {
	c.t.Helper()
	m := c.expect("error", "waiting")
	if m["code"] != code || m["message"] == "" {
		c.t.Fatalf("want refusal %q, got %v", code, m)
	}
}

// TestWaitingRoom: a patient who arrives waits and has nothing relayed,
// either way, until the clinician (on another instance) admits them;
// then their signalling flows both ways. Malformed, oversized and
// misaddressed messages, a patient admitting themselves, a replayed
// token and a second device are each answered plainly and audited; after
// the end nobody joins.
func TestWaitingRoom(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		keys, err := seal.Generate()
		if err != nil {
			t.Fatal(err)
		}
		sig, _ := audit.NewSigner(make([]byte, 32))
		aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test"})
		t.Cleanup(func() { aw.Close(context.Background()) })
		one := newInstance(t, db, keys, aw)
		two := one
		if db.Dialect == sqldb.Postgres {
			two = newInstance(t, db, keys, aw) // another process on the same database
		}

		maria := one.connect(t, "maria")
		if w := maria.expect("welcome"); w["state"] != telehealth.StateWaiting {
			t.Fatalf("the patient first waits: %v", w)
		}
		patel := two.connect(t, "patel")
		if w := patel.expect("welcome"); w["state"] != telehealth.StateAdmitted {
			t.Fatalf("the clinician is in at once: %v", w)
		}
		patel.expect("admitted")
		list := patel.expect("waiting")["list"].([]any)
		if len(list) != 1 || list[0].(map[string]any)["name"] != "Maria" {
			t.Fatalf("the clinician sees Maria waiting: %v", list)
		}
		mariaID := list[0].(map[string]any)["id"].(string)

		// Waiting: nothing relayed either way, and no self-admission.
		maria.send(map[string]any{"type": "signal", "to": "anyone", "data": map[string]any{"sdp": "v=0"}})
		maria.refusedWith("not-admitted")
		maria.send(map[string]any{"type": "admit", "who": mariaID})
		maria.refusedWith("forbidden")
		patel.send(map[string]any{"type": "signal", "to": mariaID, "data": map[string]any{"sdp": "v=0"}})
		patel.refusedWith("no-such-peer")
		maria.quiet()

		// The clinician's word reaches the waiting room.
		patel.send(map[string]any{"type": "notice", "text": "Running 10 minutes late"})
		patel.expect("notice-sent", "waiting")
		if n := maria.expect("notice"); n["text"] != "Running 10 minutes late" {
			t.Fatalf("notice: %v", n)
		}

		patel.send(map[string]any{"type": "admit", "who": mariaID})
		if peers := maria.expect("admitted")["peers"].([]any); len(peers) != 1 || peers[0].(map[string]any)["name"] != "Dr. Patel" {
			t.Fatalf("Maria is told who is in: %v", peers)
		}
		joined := patel.expect("peer-joined", "waiting")["peer"].(map[string]any)
		if joined["id"] != mariaID {
			t.Fatalf("peer-joined: %v", joined)
		}
		patelID := ""
		for range 1 {
			maria.send(map[string]any{"type": "signal", "to": "nobody", "data": map[string]any{}})
			maria.refusedWith("no-such-peer")
		}
		// Learn the clinician's id from what Maria was told.
		maria2 := one.connect(t, "maria") // her phone: the laptop is told it moved
		maria.expect("moved")
		maria.closed()
		if w := maria2.expect("welcome"); w["state"] != telehealth.StateAdmitted {
			t.Fatalf("a second device of an admitted patient rejoins: %v", w)
		}
		peers := maria2.expect("admitted")["peers"].([]any)
		patelID = peers[0].(map[string]any)["id"].(string)
		if left := patel.expect("peer-left", "waiting", "peer-joined"); left["id"] != mariaID {
			t.Fatalf("the old device left: %v", left)
		}
		m2 := patel.expect("peer-joined", "waiting")["peer"].(map[string]any)["id"].(string)

		maria2.send(map[string]any{"type": "signal", "to": patelID, "data": map[string]any{"sdp": "offer"}})
		got := patel.expect("signal", "waiting")
		if got["from"] != m2 || got["data"].(map[string]any)["sdp"] != "offer" {
			t.Fatalf("relayed: %v", got)
		}
		patel.send(map[string]any{"type": "signal", "to": m2, "data": map[string]any{"sdp": "answer"}})
		if got := maria2.expect("signal"); got["from"] != patelID {
			t.Fatalf("relayed back: %v", got)
		}

		// Bad messages: refused, nothing relayed.
		maria2.sendRaw([]byte(`{"type":"signal","to":`))
		maria2.refusedWith("malformed")
		maria2.sendRaw([]byte(`{"type":"signal","to":"` + patelID + `","data":{},"extra":1}`))
		maria2.refusedWith("malformed")
		maria2.send(map[string]any{"type": "signal", "to": patelID, "data": "not an object"})
		maria2.refusedWith("malformed")
		maria2.send(map[string]any{"type": "signal", "to": patelID, "data": map[string]any{"sdp": strings.Repeat("a", telehealth.MaxMessage)}})
		maria2.refusedWith("too-large")
		maria2.send(map[string]any{"type": "teleport"})
		maria2.refusedWith("unknown-type")
		patel.quiet("waiting")

		// Another visit's patient cannot reach into this one.
		walter := one.connect(t, "walter")
		walter.expect("welcome")
		walter.send(map[string]any{"type": "signal", "to": patelID, "data": map[string]any{}})
		walter.refusedWith("not-admitted")
		patel.quiet("waiting")

		// A token used once does not join again; one for another visit
		// or person does not join at all.
		a := arrivals["linda"]
		tok, _ := one.rooms.Tokens.Issue(context.Background(), telehealth.Claim{Appointment: a.Appointment, Participant: a.Participant, Role: a.Role})
		linda := one.connectWith(t, "linda", tok)
		linda.expect("welcome")
		again := two.connectWith(t, "linda", tok)
		again.refusedWith("token")
		again.closed()
		wa := arrivals["walter"]
		other, _ := one.rooms.Tokens.Issue(context.Background(), telehealth.Claim{Appointment: wa.Appointment, Participant: wa.Participant, Role: wa.Role})
		wrong := one.connectWith(t, "linda", other)
		wrong.refusedWith("token")

		patel.send(map[string]any{"type": "end"})
		maria2.expect("ended", "signal", "peer-joined", "peer-left")
		maria2.closed()
		linda.expect("ended", "notice", "waiting")
		late := two.connect(t, "maria")
		late.refusedWith("ended")

		events := strings.Join(audittest.Events(t, db), "\n")
		for _, want := range []string{`"code":"join"`, `"code":"admit"`, `"code":"reconnect"`, `"code":"end"`, `"code":"leave"`,
			`"not-admitted"`, `"forbidden"`, `"malformed"`, `"too-large"`, `"no-such-peer"`, `"token-replayed"`, `"token-other-visit"`} {
			if !strings.Contains(events, want) {
				t.Errorf("audit has no %s", want)
			}
		}
	})
}

// TestRejoinOverTheCapWaits: with room for two, Maria (let in) reloads;
// meanwhile the clinician lets Linda in, so Maria comes back to the
// waiting room rather than making three.
func TestRejoinOverTheCapWaits(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		keys, _ := seal.Generate()
		sig, _ := audit.NewSigner(make([]byte, 32))
		aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test"})
		t.Cleanup(func() { aw.Close(context.Background()) })
		in := newInstance(t, db, keys, aw)
		in.rooms.MaxAdmitted = 2

		patel := in.connect(t, "patel")
		patel.expect("welcome")
		admitNext := func(name string) {
			t.Helper()
			for {
				for _, w := range patel.expect("waiting", "admitted", "peer-joined", "peer-left")["list"].([]any) {
					if w := w.(map[string]any); w["name"] == name {
						patel.send(map[string]any{"type": "admit", "who": w["id"]})
						return
					}
				}
			}
		}
		maria := in.connect(t, "maria")
		maria.expect("welcome")
		admitNext("Maria")
		maria.expect("admitted")
		maria.ws.CloseNow() // her page reloads
		patel.expect("peer-left", "waiting", "peer-joined")
		linda := in.connect(t, "linda")
		linda.expect("welcome")
		admitNext("Linda")
		linda.expect("admitted")
		again := in.connect(t, "maria")
		if w := again.expect("welcome"); w["state"] != telehealth.StateWaiting {
			t.Fatalf("Maria back over the cap: %v", w)
		}
		// A shutdown ends every connection here and writes each leave
		// before returning (then the audit trail may close).
		leaves := strings.Count(strings.Join(audittest.Events(t, db), "\n"), `"code":"leave"`)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := in.rooms.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		again.closed()
		var n int
		db.Read(ctx, func(tx *sqldb.Tx) error {
			return tx.QueryRow(ctx, "SELECT COUNT(*) FROM visit_participant WHERE conn <> ''").Scan(&n)
		})
		after := strings.Count(strings.Join(audittest.Events(t, db), "\n"), `"code":"leave"`)
		if n != 0 || after != leaves+3 {
			t.Errorf("after Close: %d connections still marked, %d leave records written, want 0 and 3", n, after-leaves)
		}
	})
}
