// Command visitbench measures video visits' server side: the signalling
// relay (50 rooms of 2 admitted participants exchanging messages over
// carefront's WebSocket, each message timed from send to receipt) on one
// instance and, on PostgreSQL, with each room's two people on different
// instances (through visit_signal and NOTIFY); visit tokens issued and
// redeemed per second; and allocations per second on the embedded TURN
// server.
//
//	go run ./bench/visitbench -postgres "$CAREFRONT_TEST_POSTGRES"
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/turn/v5"

	"carefront/bench/benchdb"
	"carefront/internal/audit"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
	"carefront/internal/telehealth"
)

func main() {
	pg := flag.String("postgres", os.Getenv("CAREFRONT_TEST_POSTGRES"), "PostgreSQL DSN (a schema is created and dropped)")
	rooms := flag.Int("rooms", 50, "rooms of two")
	dur := flag.Duration("duration", 10*time.Second, "how long each relay cell runs")
	flag.Parse()
	ctx := context.Background()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "visitbench:", err)
		os.Exit(1)
	}

	fmt.Printf("signalling relay: %d rooms of 2, each side sending its next message when the last one arrived, %s per cell\n\n", *rooms, *dur)
	fmt.Printf("%-34s %10s %10s %10s\n", "database, instances", "msgs/s", "p50 ms", "p99 ms")
	for _, c := range []struct {
		d   sqldb.Dialect
		two bool
	}{{sqldb.SQLite, false}, {sqldb.Postgres, false}, {sqldb.Postgres, true}} {
		if c.d == sqldb.Postgres && *pg == "" {
			continue
		}
		if err := relay(ctx, c.d, *pg, c.two, *rooms, *dur); err != nil {
			fail(err)
		}
	}

	fmt.Printf("\nvisit tokens, one client, 2000 each\n\n%-10s %12s %12s\n", "database", "issued/s", "redeemed/s")
	for _, d := range []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres} {
		if d == sqldb.Postgres && *pg == "" {
			continue
		}
		if err := tokens(ctx, d, *pg, 2000); err != nil {
			fail(err)
		}
	}
	if err := allocations(16, 5*time.Second); err != nil {
		fail(err)
	}
}

// instance is one carefront's rooms behind a WebSocket endpoint; the
// participant comes from the query (the portal's session does that).
type instance struct {
	rooms *telehealth.Rooms
	srv   *httptest.Server
}

func newInstance(ctx context.Context, db *sqldb.DB, keys *seal.Keys, aw *audit.Writer) *instance {
	in := &instance{rooms: &telehealth.Rooms{DB: db, Seal: keys, Tokens: &telehealth.Tokens{DB: db, Seal: keys}, Audit: aw}}
	go in.rooms.Run(ctx)
	in.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		q := r.URL.Query()
		in.rooms.Serve(r.Context(), ws, telehealth.Arrival{Appointment: q.Get("appt"), Patient: "bench", Participant: q.Get("who"),
			Role: q.Get("role"), Name: q.Get("who")})
	}))
	return in
}

type conn struct {
	ws  *websocket.Conn
	msg chan map[string]any
}

func (in *instance) connect(ctx context.Context, appt, who, role string) (*conn, error) {
	tok, err := in.rooms.Tokens.Issue(ctx, telehealth.Claim{Appointment: appt, Participant: who, Role: role})
	if err != nil {
		return nil, err
	}
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(in.srv.URL, "http")+"/?appt="+appt+"&who="+who+"&role="+role, nil)
	if err != nil {
		return nil, err
	}
	c := &conn{ws: ws, msg: make(chan map[string]any, 64)}
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
	return c, c.send(ctx, map[string]any{"type": "hello", "token": tok})
}

func (c *conn) send(ctx context.Context, v any) error {
	b, _ := json.Marshal(v)
	return c.ws.Write(ctx, websocket.MessageText, b)
}

func (c *conn) next(typ string) (map[string]any, error) {
	timeout := time.After(30 * time.Second)
	for {
		select {
		case m, ok := <-c.msg:
			if !ok {
				return nil, fmt.Errorf("closed waiting for %s", typ)
			}
			if m["type"] == typ {
				return m, nil
			}
		case <-timeout:
			return nil, fmt.Errorf("no %s", typ)
		}
	}
}

func relay(ctx context.Context, d sqldb.Dialect, pg string, two bool, n int, dur time.Duration) error {
	db, cleanup, err := benchdb.Fresh(ctx, d, pg, true)
	if err != nil {
		return err
	}
	defer cleanup()
	keys, _ := seal.Generate()
	sig, _ := audit.NewSigner(make([]byte, 32))
	aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "visitbench"})
	defer aw.Close(ctx)
	ictx, stop := context.WithCancel(ctx)
	defer stop()
	a := newInstance(ictx, db, keys, aw)
	defer a.srv.Close()
	b := a
	if two {
		b = newInstance(ictx, db, keys, aw)
		defer b.srv.Close()
	}
	type pair struct{ host, patient *conn }
	pairs := make([]pair, n)
	for i := range pairs {
		appt := fmt.Sprintf("bench-%d", i)
		host, err := a.connect(ctx, appt, "Person/host-"+appt, telehealth.RoleClinician)
		if err != nil {
			return err
		}
		if _, err := host.next("admitted"); err != nil {
			return err
		}
		patient, err := b.connect(ctx, appt, "Person/patient-"+appt, telehealth.RolePatient)
		if err != nil {
			return err
		}
		w, err := host.next("waiting")
		for err == nil && len(w["list"].([]any)) == 0 {
			w, err = host.next("waiting")
		}
		if err != nil {
			return err
		}
		who := w["list"].([]any)[0].(map[string]any)["id"]
		if err := host.send(ctx, map[string]any{"type": "admit", "who": who}); err != nil {
			return err
		}
		if _, err := patient.next("admitted"); err != nil {
			return err
		}
		pairs[i] = pair{host, patient}
	}
	var mu sync.Mutex
	var lat []time.Duration
	var count atomic.Int64
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for _, p := range pairs {
		wg.Add(1)
		go func(p pair) {
			defer wg.Done()
			ping(ctx, p.host, p.patient, deadline, &mu, &lat, &count)
		}(p)
	}
	wg.Wait()
	slices.Sort(lat)
	q := func(f float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) / 1000
	}
	label := string(d) + ", one instance"
	if two {
		label = string(d) + ", two instances"
	}
	fmt.Printf("%-34s %10.0f %10.2f %10.2f\n", label, float64(count.Load())/dur.Seconds(), q(0.5), q(0.99))
	for _, p := range pairs {
		p.host.ws.CloseNow()
		p.patient.ws.CloseNow()
	}
	time.Sleep(time.Second) // their leave records, before the audit writer closes
	return nil
}

// ping has the two sides of a room answer each other's signal messages
// until the deadline: each message carries its send time.
func ping(ctx context.Context, host, patient *conn, deadline time.Time, mu *sync.Mutex, lat *[]time.Duration, count *atomic.Int64) {
	peers := map[*conn]string{} // each side's connection id
	send := func(from, to *conn) bool {
		id := peers[to]
		if id == "" {
			return false
		}
		return from.send(ctx, map[string]any{"type": "signal", "to": id, "data": map[string]any{"t": time.Now().UnixNano()}}) == nil
	}
	// The host learns the patient's id from peer-joined; the patient
	// learns the host's from the first message's "from".
	pj, err := host.next("peer-joined")
	if err != nil {
		return
	}
	peers[patient] = pj["peer"].(map[string]any)["id"].(string)
	if !send(host, patient) {
		return
	}
	for {
		for _, side := range []*conn{patient, host} {
			m, err := side.next("signal")
			if err != nil {
				return
			}
			t := time.Unix(0, int64(m["data"].(map[string]any)["t"].(float64)))
			mu.Lock()
			*lat = append(*lat, time.Since(t))
			mu.Unlock()
			count.Add(1)
			other := host
			if side == host {
				other = patient
			}
			peers[other] = m["from"].(string)
			if time.Now().After(deadline) {
				return
			}
			if !send(side, other) {
				return
			}
		}
	}
}

func tokens(ctx context.Context, d sqldb.Dialect, pg string, n int) error {
	db, cleanup, err := benchdb.Fresh(ctx, d, pg, true)
	if err != nil {
		return err
	}
	defer cleanup()
	keys, _ := seal.Generate()
	t := &telehealth.Tokens{DB: db, Seal: keys}
	toks := make([]string, n)
	start := time.Now()
	for i := range toks {
		if toks[i], err = t.Issue(ctx, telehealth.Claim{Appointment: "a", Participant: fmt.Sprintf("Person/%d", i), Role: telehealth.RolePatient}); err != nil {
			return err
		}
	}
	issued := float64(n) / time.Since(start).Seconds()
	start = time.Now()
	for _, tok := range toks {
		if _, err := t.Redeem(ctx, tok, "a"); err != nil {
			return err
		}
	}
	fmt.Printf("%-10s %12.0f %12.0f\n", d, issued, float64(n)/time.Since(start).Seconds())
	return nil
}

func allocations(clients int, dur time.Duration) error {
	secret := []byte("a TURN secret for the benchmark")
	srv := &telehealth.TURN{Listen: "127.0.0.1:0", PublicIP: net.IPv4(127, 0, 0, 1), Realm: "carefront", Secret: secret}
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Close()
	var count atomic.Int64
	var failed atomic.Int64
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user, pass := telehealth.TURNCredentials(secret, fmt.Sprintf("Person/%d", i), time.Now(), telehealth.CredentialTTL)
			for time.Now().Before(deadline) {
				conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
				if err != nil {
					failed.Add(1)
					continue
				}
				c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: srv.Addr().String(), STUNServerAddr: srv.Addr().String(),
					Username: user, Password: pass, Realm: "carefront", Conn: conn})
				if err == nil {
					err = c.Listen()
				}
				if err == nil {
					var relay net.PacketConn
					if relay, err = c.Allocate(); err == nil {
						count.Add(1)
						relay.Close() // a Refresh with lifetime 0: the allocation is freed
					}
				}
				if err != nil {
					failed.Add(1)
				}
				if c != nil {
					c.Close()
				}
				conn.Close()
			}
		}()
	}
	wg.Wait()
	fmt.Printf("\nembedded TURN server: %d clients allocating and releasing for %s: %.0f allocations/s, %d failed, %d left allocated\n",
		clients, dur, float64(count.Load())/dur.Seconds(), failed.Load(), srv.Allocations())
	return nil
}
