package telehealth

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"carefront/internal/audit"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
)

// Participant states. The server enforces the waiting room: a waiting
// participant's signalling is not relayed and nobody's reaches them.
const (
	StateWaiting  = "waiting"
	StateAdmitted = "admitted"
)

// DefaultMaxAdmitted is the size of the embedded provider's mesh: each
// browser sends its media to every other one, which a phone's uplink
// bears for four people.
const DefaultMaxAdmitted = 4

// live is how long a connection counts as present after its instance
// last vouched for it (every heartbeat): a crashed instance's people
// drop out of the room after this.
const (
	live      = 20 * time.Second
	heartbeat = 5 * time.Second
)

// notifyChannel is the PostgreSQL channel that wakes the instance holding
// a connection (the payload is the connection's id).
const notifyChannel = "visit_signal"

// Rooms holds the video visits' rooms: who waits, who is admitted, and
// the relay of messages between their connections, which may be on any
// instance. Every state lives in the database; each instance keeps only
// its own open connections.
type Rooms struct {
	DB     *sqldb.DB
	Seal   *seal.Keys
	Tokens *Tokens
	Audit  *audit.Writer
	// CheckedIn reports when the patient checked in for the visit (zero
	// if not), for the clinician's waiting list; nil shows none.
	CheckedIn func(ctx context.Context, appointment string) (time.Time, error)
	// MaxAdmitted is how many may be admitted at once (DefaultMaxAdmitted
	// when 0).
	MaxAdmitted int
	// Provider carries the media; nil is the embedded mesh, whose
	// signalling these rooms relay.
	Provider VideoProvider
	Log      *slog.Logger

	mu    sync.Mutex
	local map[string]*peer // connection id -> this instance's connection
	// serving counts the connections being served, for Close.
	serving sync.WaitGroup
}

// Close ends this instance's connections (each browser reconnects, to
// another instance behind a load balancer) and waits until each one's
// leave is written, or ctx ends. Call it before the audit writer
// closes; no connection may start after it.
func (r *Rooms) Close(ctx context.Context) error {
	r.mu.Lock()
	for _, p := range r.local {
		p.end("restart")
	}
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.serving.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SealedColumns lists the columns this package seals, for re-encryption
// after a rotation of the encryption keyset.
var SealedColumns = []seal.Column{
	{Table: "visit_token_key", IDColumn: "id", Column: "private_sealed"},
	{Table: "visit_participant", IDColumn: "id", Column: "name_sealed"},
	{Table: "visit_guest", IDColumn: "id", Column: "name_sealed"},
}

// peer is one open connection on this instance.
type peer struct {
	id, appointment, participant, role string
	out                                chan []byte
	gone                               chan string // why the server ends it
	once                               sync.Once
	// draining lets one drain at a time take this connection's rows, so
	// two wake-ups never hand over the same message twice.
	draining sync.Mutex
	// limit caps the messages a connection sends.
	limit *rate.Limiter
}

func (p *peer) send(msg []byte) {
	select {
	case p.out <- msg:
	default:
		// A connection that cannot keep up is ended rather than let
		// the instance's memory grow; the browser reconnects.
		p.end("slow")
	}
}

func (p *peer) end(reason string) {
	p.once.Do(func() { p.gone <- reason })
}

func (r *Rooms) logger() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.Default()
}

func (r *Rooms) maxAdmitted() int {
	if r.MaxAdmitted > 0 {
		return r.MaxAdmitted
	}
	return DefaultMaxAdmitted
}

// Run relays messages to this instance's connections from the others,
// and keeps its connections marked as present, until ctx ends.
func (r *Rooms) Run(ctx context.Context) {
	go func() {
		if err := r.DB.Listen(ctx, notifyChannel, func(conn string) {
			if conn == "" {
				r.drainAll(ctx)
				return
			}
			r.drain(ctx, conn)
		}); err != nil {
			r.logger().Error("telehealth: listen", "err", err)
		}
	}()
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.Beat(ctx)
		// A wake-up can be lost (the listener reconnecting): look anyway.
		r.drainAll(ctx)
	}
}

// Beat marks this instance's connections present and lets go of the
// messages nobody took; Run calls it every few seconds.
func (r *Rooms) Beat(ctx context.Context) {
	now := r.DB.Now()
	err := r.DB.Write(ctx, func(tx *sqldb.Tx) error {
		for _, id := range r.localIDs() {
			if _, err := tx.Exec(ctx, "UPDATE visit_participant SET seen = ? WHERE conn = ?", now.UnixMicro(), id); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, "DELETE FROM visit_signal WHERE created < ?", now.Add(-time.Minute).UnixMicro())
		return err
	})
	if err != nil && ctx.Err() == nil {
		r.logger().Error("telehealth: heartbeat", "err", err)
	}
}

func (r *Rooms) localIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, 0, len(r.local))
	for id := range r.local {
		ids = append(ids, id)
	}
	return ids
}

func (r *Rooms) drainAll(ctx context.Context) {
	for _, id := range r.localIDs() {
		r.drain(ctx, id)
	}
}

// drain hands a local connection the messages waiting for it.
func (r *Rooms) drain(ctx context.Context, conn string) {
	r.mu.Lock()
	p := r.local[conn]
	r.mu.Unlock()
	if p == nil {
		return
	}
	p.draining.Lock()
	defer p.draining.Unlock()
	type row struct {
		id   int64
		body string
	}
	var got []row
	// Taken and deleted in one statement: a row committed later (ids are
	// given at insert, not at commit) is not deleted unseen, and comes
	// with its own wake-up. Signalling need not survive a power cut: no
	// wait for the disk.
	err := r.DB.WriteNoWait(ctx, func(tx *sqldb.Tx) error {
		got = got[:0]
		rows, err := tx.Query(ctx, "DELETE FROM visit_signal WHERE conn = ? RETURNING id, body", conn)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var w row
			if err := rows.Scan(&w.id, &w.body); err != nil {
				return err
			}
			got = append(got, w)
		}
		return rows.Err()
	})
	if err != nil {
		if ctx.Err() == nil {
			r.logger().Error("telehealth: relay", "err", err)
		}
		return
	}
	slices.SortFunc(got, func(a, b row) int { return cmp.Compare(a.id, b.id) })
	bodies := make([]string, len(got))
	for i, w := range got {
		bodies[i] = w.body
	}
	for _, b := range bodies {
		r.handOver(p, []byte(b))
	}
}

// handOver gives a message to a local connection, acting on the ones
// that end it.
func (r *Rooms) handOver(p *peer, msg []byte) {
	var head struct {
		Type string `json:"type"`
	}
	json.Unmarshal(msg, &head)
	p.send(msg)
	switch head.Type {
	case "moved", "ended":
		p.end(head.Type)
	}
}

// deliver sends msg to the connection conn, wherever it is: at once when
// it is on this instance, else through the table and a wake-up.
func (r *Rooms) deliver(ctx context.Context, conn string, msg any) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	r.mu.Lock()
	p := r.local[conn]
	r.mu.Unlock()
	if p != nil {
		r.handOver(p, b)
		return nil
	}
	if r.DB.Dialect != sqldb.Postgres {
		return nil // one process: a connection not here is gone
	}
	// Signalling need not survive a power cut: no wait for the disk.
	return r.DB.WriteNoWait(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO visit_signal (conn, body, created) VALUES (?, ?, ?)", conn, string(b), r.DB.Now().UnixMicro()); err != nil {
			return err
		}
		return tx.Notify(ctx, r.DB, notifyChannel, conn)
	})
}

// member is one participant of a room as stored.
type member struct {
	Participant string
	Role        string
	Name        string
	State       string
	Conn        string
	Arrived     time.Time
	Joined      time.Time
	Left        time.Time
}

func memberID(appointment, participant string) string { return appointment + " " + participant }

func (r *Rooms) nameBinding(appointment, participant string) seal.Binding {
	return seal.Binding{Table: "visit_participant", Column: "name_sealed", Row: memberID(appointment, participant)}
}

// members lists a room's participants; present only those on a live
// connection.
func (r *Rooms) members(ctx context.Context, appointment string, present bool) ([]member, error) {
	var out []member
	since := r.DB.Now().Add(-live).UnixMicro()
	err := r.DB.Read(ctx, func(tx *sqldb.Tx) error {
		rows, err := tx.Query(ctx, `SELECT participant, role, name_sealed, state, conn, seen, arrived, joined, left_at
			FROM visit_participant WHERE appointment = ? ORDER BY arrived, participant`, appointment)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var m member
			var sealed []byte
			var seen, arrived, joined, left int64
			if err := rows.Scan(&m.Participant, &m.Role, &sealed, &m.State, &m.Conn, &seen, &arrived, &joined, &left); err != nil {
				return err
			}
			if m.Conn != "" && seen < since {
				m.Conn = "" // its instance stopped vouching for it
			}
			if present && m.Conn == "" {
				continue
			}
			name, err := r.Seal.Open(sealed, r.nameBinding(appointment, m.Participant))
			if err != nil {
				return err
			}
			m.Name = string(name)
			m.Arrived, m.Joined, m.Left = micros(arrived), micros(joined), micros(left)
			out = append(out, m)
		}
		return rows.Err()
	})
	return out, err
}

func micros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

func newConnID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// room is a visit's row.
type room struct {
	Patient string
	Ended   time.Time
	Notice  string
}

func (r *Rooms) room(ctx context.Context, appointment string) (*room, error) {
	var rm room
	var ended int64
	err := r.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT patient, ended, notice FROM visit_room WHERE appointment = ?", appointment).Scan(&rm.Patient, &ended, &rm.Notice)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return &room{}, nil
	}
	rm.Ended = micros(ended)
	return &rm, err
}

// Ended reports when the visit was ended by the clinician (zero if not).
func (r *Rooms) Ended(ctx context.Context, appointment string) (time.Time, error) {
	rm, err := r.room(ctx, appointment)
	if err != nil {
		return time.Time{}, err
	}
	return rm.Ended, nil
}

// Times reports when the visit really began (the first time someone
// other than the clinician was let in: a clinician alone is no visit;
// zero when nobody was) and ended (the end, or the last leave), for the
// write-back of the Encounter.
func (r *Rooms) Times(ctx context.Context, appointment string) (start, end time.Time, err error) {
	ms, err := r.members(ctx, appointment, false)
	if err != nil {
		return start, end, err
	}
	rm, err := r.room(ctx, appointment)
	if err != nil {
		return start, end, err
	}
	for _, m := range ms {
		if m.Role != RoleClinician && !m.Joined.IsZero() && (start.IsZero() || m.Joined.Before(start)) {
			start = m.Joined
		}
		if m.Left.After(end) {
			end = m.Left
		}
	}
	if !rm.Ended.IsZero() {
		end = rm.Ended
	}
	return start, end, nil
}

// Status is a visit's room as the clinician's list shows it.
type Status struct {
	Waiting      int       // people in the waiting room now
	WaitingSince time.Time // the longest wait began then
	InVisit      int       // admitted and connected
	Ended        time.Time
}

// Status reports who waits and who is in a visit's room.
func (r *Rooms) Status(ctx context.Context, appointment string) (Status, error) {
	var st Status
	ms, err := r.members(ctx, appointment, true)
	if err != nil {
		return st, err
	}
	for _, m := range ms {
		switch m.State {
		case StateWaiting:
			st.Waiting++
			if st.WaitingSince.IsZero() || m.Arrived.Before(st.WaitingSince) {
				st.WaitingSince = m.Arrived
			}
		case StateAdmitted:
			st.InVisit++
		}
	}
	st.Ended, err = r.Ended(ctx, appointment)
	return st, err
}
