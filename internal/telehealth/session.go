package telehealth

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"carefront/internal/audit"
	"carefront/internal/sqldb"
)

// Limits of the signalling protocol.
const (
	// MaxMessage is the largest message relayed: an offer with many
	// codecs and candidates is under 16 KiB.
	MaxMessage = 64 << 10
	// readLimit is where the connection itself is closed (1009).
	readLimit = 1 << 20
	// MaxNotice is the length of the clinician's word to those waiting.
	MaxNotice = 200
	// helloWait is how long a new connection has to present its token.
	helloWait = 10 * time.Second
	// maxRefusals ends a connection that keeps sending what is refused.
	maxRefusals = 50
	// A connection may send this many messages a second, with bursts
	// (an offer comes with a few dozen candidates): more is refused, so
	// one participant cannot flood another's queue.
	messagesPerSecond = 50
	messageBurst      = 200
	writeWait         = 10 * time.Second
	pingEvery         = 15 * time.Second
)

// Arrival is who opens a connection to a visit, as the portal session
// established (the web layer decides that they may join): the token they
// present must name the same appointment, participant and role.
type Arrival struct {
	Appointment string
	Patient     string // the patient whose visit it is
	Participant string // "Person/ID" or "Guest/ID"
	Role        string
	Name        string // as the others see them
	// For the audit record.
	OnBehalf string // the patient a caregiver acts for ("Patient/ID")
	UserName string // a staff member's name
	UserRole string
	Address  string
	Session  string // hex SHA-256 of the portal session id
}

// Visit event codes in the audit trail.
const (
	EventJoin      = "join"
	EventReconnect = "reconnect"
	EventAdmit     = "admit"
	EventLeave     = "leave"
	EventEnd       = "end"
	EventCallMe    = "call-me"
	EventRefused   = "refused"
)

// SubtypeVideoVisit is the audit subtype of every video visit event;
// the event itself is a second subtype (EventCoding).
var SubtypeVideoVisit = audit.Coding{System: "https://carefront.example/CodeSystem/audit-subtype", Code: "video-visit", Display: "Video Visit"}

// EventCoding names one visit event (join, admit, ...) in the audit.
func EventCoding(event string) audit.Coding {
	return audit.Coding{System: "https://carefront.example/CodeSystem/video-visit-event", Code: event}
}

// inbound is a message from a browser.
type inbound struct {
	Type  string          `json:"type"`
	Token string          `json:"token,omitempty"`
	To    string          `json:"to,omitempty"`
	Who   string          `json:"who,omitempty"`
	Text  string          `json:"text,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// Peer is another connection as a browser sees it.
type Peer struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
}

// Waiting is one person in the waiting room, as the clinician sees them.
type Waiting struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Since     time.Time `json:"since"`
	CheckedIn bool      `json:"checkedIn"`
}

// refusal is a message refused, with its code for the browser and the
// audit.
type refusal struct {
	Code    string
	Message string
}

func (e *refusal) Error() string { return e.Message }

var (
	errMalformed   = &refusal{"malformed", "That message could not be read."}
	errTooLarge    = &refusal{"too-large", "That message is too large."}
	errNotAdmitted = &refusal{"not-admitted", "You are in the waiting room; the clinician will let you in."}
	errNoSuchPeer  = &refusal{"no-such-peer", "That person is not in the visit."}
	errForbidden   = &refusal{"forbidden", "Only the clinician can do that."}
	errFull        = &refusal{"full", "The visit is full."}
	errEnded       = &refusal{"ended", "This visit has ended."}
	errNotWaiting  = &refusal{"not-waiting", "That person is not waiting any more."}
	errUnknown     = &refusal{"unknown-type", "That message is not understood."}
	errTooFast     = &refusal{"too-fast", "Too many messages; slow down."}
)

// Serve runs one participant's connection until it closes. The first
// message must be {"type":"hello","token":...} with a visit token for
// a.Appointment issued to a's participant; until the clinician admits
// them, nothing they send is relayed and nothing is relayed to them.
func (r *Rooms) Serve(ctx context.Context, ws *websocket.Conn, a Arrival) {
	r.serving.Add(1)
	defer r.serving.Done()
	ws.SetReadLimit(readLimit)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := &peer{id: newConnID(), appointment: a.Appointment, participant: a.Participant, role: a.Role,
		out: make(chan []byte, 256), gone: make(chan string, 1), limit: rate.NewLimiter(messagesPerSecond, messageBurst)}

	if err := r.hello(ctx, ws, a); err != nil {
		var re *refusal
		if errors.As(err, &re) {
			writeNow(ctx, ws, map[string]string{"type": "error", "code": re.Code, "message": re.Message})
			ws.Close(websocket.StatusPolicyViolation, re.Code)
			return
		}
		ws.Close(websocket.StatusInternalError, "")
		return
	}
	r.mu.Lock()
	if r.local == nil {
		r.local = map[string]*peer{}
	}
	r.local[p.id] = p
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.local, p.id)
		r.mu.Unlock()
		r.leave(context.WithoutCancel(ctx), a, p)
	}()
	if err := r.join(ctx, a, p); err != nil {
		var re *refusal
		if errors.As(err, &re) {
			writeNow(ctx, ws, map[string]string{"type": "error", "code": re.Code, "message": re.Message})
			ws.Close(websocket.StatusNormalClosure, re.Code)
			return
		}
		r.logger().Error("telehealth: join", "err", err)
		ws.Close(websocket.StatusInternalError, "")
		return
	}

	// The writer: messages to the browser, pings, and the server's end
	// of the connection (moved to another device, visit ended).
	go func() {
		defer cancel()
		ping := time.NewTicker(pingEvery)
		defer ping.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case msg := <-p.out:
				if writeNow(ctx, ws, json.RawMessage(msg)) != nil {
					return
				}
			case reason := <-p.gone:
				// Flush what was queued first (the "moved" or "ended").
				for len(p.out) > 0 {
					writeNow(ctx, ws, json.RawMessage(<-p.out))
				}
				ws.Close(websocket.StatusNormalClosure, reason)
				return
			case <-ping.C:
				pctx, done := context.WithTimeout(ctx, writeWait)
				err := ws.Ping(pctx)
				done()
				if err != nil {
					return
				}
			}
		}
	}()

	refusals := 0
	for {
		typ, b, err := ws.Read(ctx)
		if err != nil {
			return
		}
		if p.limit.Allow() {
			err = r.handle(ctx, a, p, typ, b)
		} else {
			err = errTooFast
		}
		var re *refusal
		switch {
		case errors.As(err, &re):
			r.auditEvent(ctx, a, EventRefused, re.Code)
			p.send(mustJSON(map[string]string{"type": "error", "code": re.Code, "message": re.Message}))
			if refusals++; refusals >= maxRefusals {
				ws.Close(websocket.StatusPolicyViolation, "too many refused messages")
				return
			}
		case err != nil:
			if ctx.Err() == nil {
				r.logger().Error("telehealth: message", "err", err)
			}
			ws.Close(websocket.StatusInternalError, "")
			return
		}
	}
}

func writeNow(ctx context.Context, ws *websocket.Conn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, writeWait)
	defer cancel()
	return ws.Write(wctx, websocket.MessageText, b)
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// decode reads one message strictly: a JSON object of known fields.
func decode(typ websocket.MessageType, b []byte) (*inbound, error) {
	if typ != websocket.MessageText {
		return nil, errMalformed
	}
	if len(b) > MaxMessage {
		return nil, errTooLarge
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var m inbound
	if err := d.Decode(&m); err != nil || d.More() {
		return nil, errMalformed
	}
	return &m, nil
}

// hello reads the first message and redeems its token.
func (r *Rooms) hello(ctx context.Context, ws *websocket.Conn, a Arrival) error {
	hctx, cancel := context.WithTimeout(ctx, helloWait)
	defer cancel()
	typ, b, err := ws.Read(hctx)
	if err != nil {
		return &refusal{"no-hello", "The visit did not start in time; reload the page."}
	}
	m, err := decode(typ, b)
	if err == nil && (m.Type != "hello" || m.Token == "") {
		err = errMalformed
	}
	if err != nil {
		r.auditEvent(ctx, a, EventRefused, "no-hello")
		return err
	}
	c, err := r.Tokens.Redeem(ctx, m.Token, a.Appointment)
	if err == nil && (c.Participant != a.Participant || c.Role != a.Role) {
		err = refused("other-participant")
	}
	var te *TokenError
	if errors.As(err, &te) {
		r.auditEvent(ctx, a, EventRefused, "token-"+te.Reason)
		return &refusal{"token", ErrBadToken.Error()}
	}
	return err
}

// join puts the participant in the room: waiting, or admitted (the
// clinician, or one admitted earlier in this visit who reloaded). An
// earlier connection of theirs (another device, a tab) is told it moved.
func (r *Rooms) join(ctx context.Context, a Arrival, p *peer) error {
	now := r.DB.Now()
	since := now.Add(-live).UnixMicro()
	id := memberID(a.Appointment, a.Participant)
	sealedName, err := r.Seal.Seal([]byte(a.Name), r.nameBinding(a.Appointment, a.Participant))
	if err != nil {
		return err
	}
	var (
		state, old, notice string
		joinedBefore, live bool
	)
	err = r.DB.Write(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO visit_room (appointment, patient) VALUES (?, ?) ON CONFLICT DO NOTHING", a.Appointment, a.Patient); err != nil {
			return err
		}
		lock := ""
		if tx.Dialect() == sqldb.Postgres {
			// Joins and admissions of one visit, one at a time: the
			// count of those admitted holds until commit.
			lock = " FOR UPDATE"
		}
		var ended int64
		if err := tx.QueryRow(ctx, "SELECT ended, notice FROM visit_room WHERE appointment = ?"+lock, a.Appointment).Scan(&ended, &notice); err != nil {
			return err
		}
		if ended != 0 {
			return errEnded
		}
		state = StateWaiting
		if a.Role == RoleClinician {
			state = StateAdmitted
		}
		if _, err := tx.Exec(ctx, `INSERT INTO visit_participant (id, appointment, participant, role, name_sealed, state, arrived)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, id, a.Appointment, a.Participant, a.Role, sealedName, state, now.UnixMicro()); err != nil {
			return err
		}
		var seen, joined int64
		if err := tx.QueryRow(ctx, "SELECT state, conn, seen, joined FROM visit_participant WHERE id = ?"+lock, id).Scan(&state, &old, &seen, &joined); err != nil {
			return err
		}
		live = old != "" && seen >= since
		if a.Role == RoleClinician {
			state = StateAdmitted
		} else if state == StateAdmitted && !live {
			// Back after a reload: in again, unless the visit filled
			// up meanwhile; then they wait to be let in.
			var n int
			if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM visit_participant WHERE appointment = ? AND id <> ? AND state = ? AND conn <> '' AND seen >= ?",
				a.Appointment, id, StateAdmitted, since).Scan(&n); err != nil {
				return err
			}
			if n >= r.maxAdmitted() {
				state = StateWaiting
			}
		}
		joinedBefore = joined != 0
		if state == StateAdmitted && joined == 0 {
			joined = now.UnixMicro()
		}
		if _, err := tx.Exec(ctx, `UPDATE visit_participant SET conn = ?, seen = ?, state = ?, name_sealed = ?, joined = ?, left_at = 0 WHERE id = ?`,
			p.id, now.UnixMicro(), state, sealedName, joined, id); err != nil {
			return err
		}
		event := EventJoin
		if joinedBefore || live {
			event = EventReconnect
		}
		// The event commits with the change it records.
		return r.Audit.Stage(ctx, tx, r.visitRecord(a, event, ""))
	})
	if err != nil {
		return err
	}
	r.Audit.Chain(ctx)
	if old != "" {
		if live {
			if err := r.deliver(ctx, old, map[string]string{"type": "moved", "message": "You joined this visit on another device or tab, so it continues there."}); err != nil {
				return err
			}
			if r.Provider != nil {
				if err := r.Provider.Remove(ctx, a.Appointment, a.Participant); err != nil {
					return err
				}
			}
		}
		// The others drop the old connection, live or gone stale (its
		// instance stopped).
		if err := r.toAdmitted(ctx, a.Appointment, p.id, map[string]string{"type": "peer-left", "id": old}); err != nil {
			return err
		}
	}
	p.send(mustJSON(map[string]any{"type": "welcome", "you": p.id, "role": a.Role, "state": state, "notice": notice}))
	if state == StateAdmitted {
		if err := r.announce(ctx, a.Appointment, p.id); err != nil {
			return err
		}
	}
	return r.refreshWaiting(ctx, a.Appointment)
}

// announce tells an admitted connection who is in the visit, and the
// others that it joined. The newcomer starts the connection to each.
func (r *Rooms) announce(ctx context.Context, appointment, conn string) error {
	ms, err := r.members(ctx, appointment, true)
	if err != nil {
		return err
	}
	var self *Peer
	var who MediaParticipant
	peers := []Peer{}
	for _, m := range ms {
		if m.State != StateAdmitted {
			continue
		}
		pe := Peer{ID: m.Conn, Name: m.Name, Role: m.Role}
		if m.Conn == conn {
			self, who = &pe, MediaParticipant{Participant: m.Participant, Name: m.Name, Role: m.Role}
			continue
		}
		peers = append(peers, pe)
	}
	if self == nil {
		return nil // gone meanwhile
	}
	msg := map[string]any{"type": "admitted", "peers": peers}
	if r.Provider != nil {
		// A media engine's token, minted now that they are admitted.
		media, err := r.Provider.Join(ctx, appointment, who)
		if err != nil {
			return err
		}
		msg["media"] = media
	}
	// The others first: the newcomer's offers may follow at once.
	for _, pe := range peers {
		if err := r.deliver(ctx, pe.ID, map[string]any{"type": "peer-joined", "peer": self}); err != nil {
			return err
		}
	}
	return r.deliver(ctx, conn, msg)
}

// toAdmitted sends msg to every admitted connection but except.
func (r *Rooms) toAdmitted(ctx context.Context, appointment, except string, msg any) error {
	ms, err := r.members(ctx, appointment, true)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.State == StateAdmitted && m.Conn != except {
			if err := r.deliver(ctx, m.Conn, msg); err != nil {
				return err
			}
		}
	}
	return nil
}

// refreshWaiting sends the clinicians present the waiting list.
func (r *Rooms) refreshWaiting(ctx context.Context, appointment string) error {
	ms, err := r.members(ctx, appointment, true)
	if err != nil {
		return err
	}
	var checkedIn bool
	if r.CheckedIn != nil {
		at, err := r.CheckedIn(ctx, appointment)
		if err != nil {
			return err
		}
		checkedIn = !at.IsZero()
	}
	list := []Waiting{}
	var clinicians []string
	for _, m := range ms {
		switch {
		case m.Role == RoleClinician:
			clinicians = append(clinicians, m.Conn)
		case m.State == StateWaiting:
			list = append(list, Waiting{ID: m.Conn, Name: m.Name, Role: m.Role, Since: m.Arrived,
				CheckedIn: checkedIn && m.Role != RoleGuest})
		}
	}
	for _, c := range clinicians {
		if err := r.deliver(ctx, c, map[string]any{"type": "waiting", "list": list}); err != nil {
			return err
		}
	}
	return nil
}

// self reads a connection's own row: its state, whether it is still its
// participant's connection, and whether the visit ended.
func (r *Rooms) self(ctx context.Context, a Arrival, p *peer) (state string, err error) {
	var conn string
	var ended int64
	err = r.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, `SELECT p.state, p.conn, r.ended FROM visit_participant p JOIN visit_room r ON r.appointment = p.appointment
			WHERE p.id = ?`, memberID(a.Appointment, a.Participant)).Scan(&state, &conn, &ended)
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", errNotAdmitted
	case err != nil:
		return "", err
	case ended != 0:
		return "", errEnded
	case conn != p.id:
		return "", errNotAdmitted
	}
	return state, nil
}

// target finds an admitted, present connection of the same visit.
func (r *Rooms) target(ctx context.Context, appointment, conn string) (state, role string, err error) {
	if conn == "" || len(conn) > 64 {
		return "", "", errNoSuchPeer
	}
	since := r.DB.Now().Add(-live).UnixMicro()
	err = r.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT state, role FROM visit_participant WHERE appointment = ? AND conn = ? AND seen >= ?",
			appointment, conn, since).Scan(&state, &role)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", errNoSuchPeer
	}
	return state, role, err
}

// handle acts on one message from an established connection.
func (r *Rooms) handle(ctx context.Context, a Arrival, p *peer, typ websocket.MessageType, b []byte) error {
	m, err := decode(typ, b)
	if err != nil {
		return err
	}
	// What a message sets off (a fan-out to the room) finishes even if
	// this connection closes meanwhile.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeWait)
	defer cancel()
	switch m.Type {
	case "signal":
		return r.signal(ctx, a, p, m)
	case "admit":
		return r.admit(ctx, a, p, m.Who)
	case "notice":
		return r.notice(ctx, a, p, m.Text)
	case "call-me":
		return r.callMe(ctx, a, p)
	case "end":
		return r.end(ctx, a, p)
	case "leave":
		p.end("left")
		return nil
	}
	return errUnknown
}

func (r *Rooms) signal(ctx context.Context, a Arrival, p *peer, m *inbound) error {
	if len(m.Data) == 0 || m.Data[0] != '{' || m.To == p.id {
		return errMalformed
	}
	state, err := r.self(ctx, a, p)
	if err != nil {
		return err
	}
	if state != StateAdmitted {
		return errNotAdmitted
	}
	ts, _, err := r.target(ctx, a.Appointment, m.To)
	if err != nil {
		return err
	}
	if ts != StateAdmitted {
		return errNoSuchPeer // a waiting person gets nothing relayed
	}
	return r.deliver(ctx, m.To, map[string]any{"type": "signal", "from": p.id, "data": m.Data})
}

func (r *Rooms) host(ctx context.Context, a Arrival, p *peer) error {
	if a.Role != RoleClinician {
		return errForbidden
	}
	state, err := r.self(ctx, a, p)
	if err == nil && state != StateAdmitted {
		err = errForbidden
	}
	return err
}

func (r *Rooms) admit(ctx context.Context, a Arrival, p *peer, who string) error {
	if err := r.host(ctx, a, p); err != nil {
		return err
	}
	now := r.DB.Now()
	since := now.Add(-live).UnixMicro()
	var admitted string
	err := r.DB.Write(ctx, func(tx *sqldb.Tx) error {
		if tx.Dialect() == sqldb.Postgres {
			// One admission at a time per visit, so two clinicians
			// admitting at once cannot overfill it.
			if _, err := tx.Exec(ctx, "SELECT 1 FROM visit_room WHERE appointment = ? FOR UPDATE", a.Appointment); err != nil {
				return err
			}
		}
		var state string
		err := tx.QueryRow(ctx, "SELECT state FROM visit_participant WHERE appointment = ? AND conn = ? AND seen >= ?", a.Appointment, who, since).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && state != StateWaiting) {
			return errNotWaiting
		}
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM visit_participant WHERE appointment = ? AND state = ? AND conn <> '' AND seen >= ?",
			a.Appointment, StateAdmitted, since).Scan(&n); err != nil {
			return err
		}
		if n >= r.maxAdmitted() {
			return errFull
		}
		if err := tx.QueryRow(ctx, "SELECT participant FROM visit_participant WHERE appointment = ? AND conn = ?", a.Appointment, who).Scan(&admitted); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, "UPDATE visit_participant SET state = ?, admitted = ?, joined = CASE WHEN joined = 0 THEN ? ELSE joined END WHERE appointment = ? AND conn = ? AND state = ?",
			StateAdmitted, now.UnixMicro(), now.UnixMicro(), a.Appointment, who, StateWaiting)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, errNotWaiting)
		}
		return r.Audit.Stage(ctx, tx, r.visitRecord(a, EventAdmit, "", admitted))
	})
	if err != nil {
		return err
	}
	r.Audit.Chain(ctx)
	if err := r.announce(ctx, a.Appointment, who); err != nil {
		return err
	}
	return r.refreshWaiting(ctx, a.Appointment)
}

func (r *Rooms) notice(ctx context.Context, a Arrival, p *peer, text string) error {
	if err := r.host(ctx, a, p); err != nil {
		return err
	}
	text = strings.TrimSpace(text)
	if !utf8.ValidString(text) || utf8.RuneCountInString(text) > MaxNotice || strings.ContainsFunc(text, func(c rune) bool { return c < 0x20 }) {
		return errMalformed
	}
	if err := r.DB.Write(ctx, func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE visit_room SET notice = ? WHERE appointment = ?", text, a.Appointment)
		return err
	}); err != nil {
		return err
	}
	ms, err := r.members(ctx, a.Appointment, true)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.State == StateWaiting {
			if err := r.deliver(ctx, m.Conn, map[string]string{"type": "notice", "text": text}); err != nil {
				return err
			}
		}
	}
	p.send(mustJSON(map[string]string{"type": "notice-sent", "text": text}))
	return nil
}

func (r *Rooms) callMe(ctx context.Context, a Arrival, p *peer) error {
	if a.Role == RoleClinician {
		return errMalformed
	}
	if _, err := r.self(ctx, a, p); err != nil {
		return err
	}
	ms, err := r.members(ctx, a.Appointment, true)
	if err != nil {
		return err
	}
	name := ""
	for _, m := range ms {
		if m.Conn == p.id {
			name = m.Name
		}
	}
	r.auditEvent(ctx, a, EventCallMe, "")
	for _, m := range ms {
		if m.Role == RoleClinician {
			if err := r.deliver(ctx, m.Conn, map[string]string{"type": "call-me", "name": name}); err != nil {
				return err
			}
		}
	}
	p.send(mustJSON(map[string]string{"type": "call-me-sent"}))
	return nil
}

func (r *Rooms) end(ctx context.Context, a Arrival, p *peer) error {
	if err := r.host(ctx, a, p); err != nil {
		return err
	}
	now := r.DB.Now()
	if err := r.DB.Write(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, "UPDATE visit_room SET ended = ? WHERE appointment = ? AND ended = 0", now.UnixMicro(), a.Appointment); err != nil {
			return err
		}
		return r.Audit.Stage(ctx, tx, r.visitRecord(a, EventEnd, ""))
	}); err != nil {
		return err
	}
	r.Audit.Chain(ctx)
	ms, err := r.members(ctx, a.Appointment, true)
	if err != nil {
		return err
	}
	// Everyone is told, whatever fails on the way; then the media
	// engine closes the room.
	for _, m := range ms {
		if m.Conn == p.id {
			continue
		}
		if err := r.deliver(ctx, m.Conn, map[string]string{"type": "ended"}); err != nil {
			r.logger().Error("telehealth: tell of the end", "err", err)
		}
	}
	if r.Provider != nil {
		if err := r.Provider.End(ctx, a.Appointment); err != nil {
			r.logger().Error("telehealth: close the media room", "err", err)
		}
	}
	return r.deliver(ctx, p.id, map[string]string{"type": "ended"})
}

// leave takes a closed connection out of the room.
func (r *Rooms) leave(ctx context.Context, a Arrival, p *peer) {
	now := r.DB.Now()
	var n int64
	err := r.DB.Write(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, "UPDATE visit_participant SET conn = '', left_at = ? WHERE id = ? AND conn = ?",
			now.UnixMicro(), memberID(a.Appointment, a.Participant), p.id)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err // n == 0: moved to another connection
		}
		return r.Audit.Stage(ctx, tx, r.visitRecord(a, EventLeave, ""))
	})
	if err != nil || n == 0 {
		if err != nil {
			r.logger().Error("telehealth: leave", "err", err)
		}
		return
	}
	r.Audit.Chain(ctx)
	r.toAdmitted(ctx, a.Appointment, p.id, map[string]string{"type": "peer-left", "id": p.id})
	r.refreshWaiting(ctx, a.Appointment)
}

// auditEvent writes one visit event that changes nothing (a refusal, a
// call-me) with the appointment as its entity; events that change the
// room are staged in its transaction (visitRecord).
func (r *Rooms) auditEvent(ctx context.Context, a Arrival, event, reason string, also ...string) {
	if err := r.Audit.Append(context.WithoutCancel(ctx), r.visitRecord(a, event, reason, also...)); err != nil {
		r.logger().Error("telehealth: audit", "event", event, "err", err)
	}
}

// visitRecord is one visit event's audit record; also names more
// entities (who was admitted).
func (r *Rooms) visitRecord(a Arrival, event, reason string, also ...string) audit.Record {
	rec := audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{SubtypeVideoVisit, EventCoding(event)},
		Action: audit.Execute, Outcome: audit.Success, User: a.Participant, UserName: a.UserName, UserRole: a.UserRole,
		OnBehalf: a.OnBehalf, Address: a.Address, Session: a.Session, Entities: []audit.Entity{{What: "Appointment/" + a.Appointment}}}
	if a.Patient != "" {
		rec.Patient = "Patient/" + a.Patient
	}
	for _, e := range also {
		rec.Entities = append(rec.Entities, audit.Entity{What: e}) // e.g. who was admitted
	}
	if reason != "" {
		rec.Outcome, rec.Reason = audit.MinorFailure, reason
	}
	return rec
}
