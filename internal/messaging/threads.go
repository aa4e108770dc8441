package messaging

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/clinical"
	"carefront/internal/failpoint"
	"carefront/internal/notify"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
)

// Limits of what a person writes.
const (
	MaxText    = 10000 // characters of one message
	MaxSubject = 120   // characters of a thread's subject
)

// Author kinds.
const (
	ByPatient   = "patient"
	ByCaregiver = "caregiver"
	ByStaff     = "staff"
	ByCarefront = "auto" // carefront's own replies (outside office hours)
)

// Thread statuses.
const (
	Open = "open"
	Done = "done"
)

// Thread is a conversation between a patient's record and a pool.
type Thread struct {
	ID       string
	Patient  string
	Pool     string
	PoolName string
	// ResponseTime is the pool's, as patients are told.
	ResponseTime time.Duration
	Subject      string
	Status       string
	AssignedTo   string
	Created      time.Time
	Updated      time.Time
	// Messages, when the thread was opened (Store.Thread), oldest first.
	Messages []Message
	// Unread counts the other side's messages the reader has not opened.
	Unread int
	// Waiting, when the patient's side wrote last, is when they began to
	// wait for an answer (their first message since the team's last);
	// zero when the team answered last.
	Waiting time.Time
}

// Due is when the pool's response time runs out for a waiting thread;
// zero when no one is waiting.
func (t *Thread) Due() time.Time {
	if t.Waiting.IsZero() {
		return time.Time{}
	}
	return t.Waiting.Add(t.ResponseTime)
}

// Message is one message of a thread.
type Message struct {
	ID     string
	Thread string
	// Author is the account that wrote it ("" for carefront's own).
	Author     string
	AuthorKind string
	// AuthorName is a staff member's name, as the message is signed.
	AuthorName string
	Text       string
	Sent       time.Time
	// ReadAt is when the other side first opened it; zero until then.
	ReadAt time.Time
	// Attachments are the files sent with it (without their bytes).
	Attachments []AttachmentInfo
}

// AttachmentInfo describes a file sent with a message.
type AttachmentInfo struct {
	ID          string
	Name        string
	ContentType string
	Size        int
}

// Author is who writes: their account and how they write (ByPatient,
// ByCaregiver for someone acting under a caregiver grant, ByStaff with the
// name they sign with).
type Author struct {
	Account string
	Kind    string
	Name    string
}

// Decider decides and shapes audit records as the clinical gateway does
// (clinical.Gateway).
type Decider interface {
	Decide(ctx context.Context, req clinical.Request, a access.Action, t access.Target) (access.Decision, clinical.Request, error)
	AuditRecord(req clinical.Request, sub audit.Coding, action audit.Action) audit.Record
}

// ErrNoThread is a thread that does not exist or that the person may not
// see: the two answer alike.
var ErrNoThread = apperr.New(apperr.NotFound, "there is no such conversation")

// inputError is bad input: an Invalid apperr naming the form field it is
// about and a code for the message shown beside it.
func inputError(field, code, format string, args ...any) error {
	return apperr.NewField(apperr.Invalid, field, "messages."+code, format, args...)
}

// checkText trims a message and checks its length.
func checkText(text string) (string, error) {
	text = strings.TrimSpace(strings.ReplaceAll(text, "\r\n", "\n"))
	switch {
	case text == "":
		return "", inputError("text", "text-missing", "write a message before sending it")
	case utf8.RuneCountInString(text) > MaxText:
		return "", inputError("text", "text-long", "a message can be up to %d characters; this one has %d", MaxText, utf8.RuneCountInString(text))
	case !utf8.ValidString(text) || strings.ContainsFunc(text, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }):
		return "", inputError("text", "text-characters", "the message holds characters that cannot be sent")
	}
	return text, nil
}

// Start opens a thread with a pool offered to the patient req acts for
// (pools: Store.PoolsFor's answer for them) and sends its first message.
func (s *Store) Start(ctx context.Context, d Decider, req clinical.Request, who Author, pools []Pool, pool, subject, text string, files ...Upload) (*Thread, error) {
	// Every field is checked, so a form shows all its problems at once.
	var bad []error
	var chosen *Pool
	for i := range pools {
		if pools[i].ID == pool {
			chosen = &pools[i]
		}
	}
	if chosen == nil {
		bad = append(bad, inputError("pool", "pool-missing", "choose who to write to from the list"))
	}
	subject = strings.TrimSpace(subject)
	if subject == "" || utf8.RuneCountInString(subject) > MaxSubject || strings.ContainsFunc(subject, unicode.IsControl) {
		bad = append(bad, inputError("subject", "subject-invalid", "give the message a subject, up to %d characters", MaxSubject))
	}
	text, err := checkText(text)
	if err != nil {
		bad = append(bad, err)
	}
	atts, err := checkFiles(ctx, files)
	if err != nil {
		bad = append(bad, err)
	}
	if len(bad) > 0 {
		return nil, errors.Join(bad...)
	}
	notify.Probe(subject) // tests only: no notification may hold it
	notify.Probe(text)
	patient := req.Principal.Patient
	th := &Thread{ID: newID(), Patient: patient, Pool: chosen.ID, PoolName: chosen.Name, ResponseTime: chosen.ResponseTime,
		Subject: subject, Status: Open}
	m := &Message{ID: newID(), Thread: th.ID, Author: who.Account, AuthorKind: who.Kind, AuthorName: who.Name, Text: text, Attachments: infos(atts)}
	dec, req, err := d.Decide(ctx, req, access.Write, access.Target{Type: "Communication", ID: m.ID, Patients: []string{patient}, Pool: chosen.ID})
	if err != nil {
		return nil, err
	}
	rec := d.AuditRecord(req, audit.SubtypeCreate, audit.Create)
	rec.Patient, rec.Entities = "Patient/"+patient, []audit.Entity{{What: "Communication/" + m.ID}}
	if !dec.Permit {
		return nil, s.refuse(ctx, rec, dec.Reason, apperr.New(apperr.Forbidden, "you cannot send messages for this record"))
	}
	now := s.now()
	th.Created, th.Updated, m.Sent = now, now, now
	subj, err := s.Keys.Seal([]byte(subject), seal.Binding{Table: "message_thread", Column: "subject", Row: th.ID})
	if err != nil {
		return nil, err
	}
	err = s.DB.Write(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO message_thread (id, patient_id, pool_id, subject, status, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
			th.ID, th.Patient, th.Pool, subj, th.Status, now.UnixMicro(), now.UnixMicro()); err != nil {
			return err
		}
		if err := s.add(ctx, tx, th, m, atts, now); err != nil {
			return err
		}
		if err := deleteDraft(ctx, tx, who.Account, patient, ""); err != nil {
			return err
		}
		return s.stage(ctx, tx, rec)
	})
	if err != nil {
		return nil, err
	}
	failpoint.Hit("message-after-commit") // crash tests: the message and its notices are in, nothing after
	th.Messages = []Message{*m}
	return th, s.Audit.Chain(ctx)
}

// Send adds a message to a thread: from the patient's side, or from a
// member of the thread's pool. A thread the person may not write to is
// ErrNoThread, as a missing one; a thread marked done opens again.
func (s *Store) Send(ctx context.Context, d Decider, req clinical.Request, who Author, thread, text string, files ...Upload) (*Message, error) {
	text, err := checkText(text)
	atts, ferr := checkFiles(ctx, files)
	if err != nil || ferr != nil {
		return nil, errors.Join(err, ferr)
	}
	notify.Probe(text) // tests only: no notification may hold it
	th, err := s.thread(ctx, thread)
	if err != nil {
		return nil, err
	}
	m := &Message{ID: newID(), Thread: th.ID, Author: who.Account, AuthorKind: who.Kind, AuthorName: who.Name, Text: text, Attachments: infos(atts)}
	dec, req, err := d.Decide(ctx, req, access.Write, access.Target{Type: "Communication", ID: m.ID, Patients: []string{th.Patient}, Pool: th.Pool})
	if err != nil {
		return nil, err
	}
	rec := d.AuditRecord(req, audit.SubtypeCreate, audit.Create)
	rec.Patient, rec.Entities = "Patient/"+th.Patient, []audit.Entity{{What: "Communication/" + m.ID}}
	if !dec.Permit {
		return nil, s.refuse(ctx, rec, dec.Reason, ErrNoThread)
	}
	if (who.Kind == ByStaff) != (req.Principal.Role != "") {
		return nil, errors.New("messaging: a staff member writes as staff, and only they do")
	}
	now := s.now()
	m.Sent = now
	err = s.DB.Write(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, "UPDATE message_thread SET updated = ?, status = ? WHERE id = ?", now.UnixMicro(), Open, th.ID); err != nil {
			return err
		}
		if err := s.add(ctx, tx, th, m, atts, now); err != nil {
			return err
		}
		if err := deleteDraft(ctx, tx, who.Account, th.Patient, th.ID); err != nil {
			return err
		}
		return s.stage(ctx, tx, rec)
	})
	if err != nil {
		return nil, err
	}
	return m, s.Audit.Chain(ctx)
}

// Threads lists the threads of the record req acts for, newest first, with
// the count of the team's messages not yet opened. Listing is a search of
// the patient's messages, decided and audited as one.
func (s *Store) Threads(ctx context.Context, d Decider, req clinical.Request) ([]Thread, error) {
	dec, req, err := d.Decide(ctx, req, access.Search, access.Target{Type: "Communication"})
	if err != nil {
		return nil, err
	}
	rec := d.AuditRecord(req, audit.SubtypeSearch, audit.Execute)
	rec.Query = "Communication?patient=" + req.Principal.Patient
	if req.Principal.Patient != "" {
		rec.Patient = "Patient/" + req.Principal.Patient
	}
	if !dec.Permit || dec.Compartment == "" {
		return nil, s.refuse(ctx, rec, dec.Reason, apperr.New(apperr.Forbidden, "you cannot see the messages of this record"))
	}
	ths, err := s.list(ctx, "t.patient_id = ?", []any{dec.Compartment}, ByStaff, ByCarefront)
	if err != nil {
		return nil, err
	}
	if err := s.Audit.Append(ctx, rec); err != nil {
		return nil, err
	}
	return ths, nil
}

// Inbox lists the threads of the pools a staff member answers (req's
// principal's Pools), open ones first, then by their latest message, with
// the count of the patient's side's messages no one in the pool has
// opened. Each patient whose threads are listed gets an audit record.
func (s *Store) Inbox(ctx context.Context, d Decider, req clinical.Request) ([]Thread, error) {
	p := req.Principal
	if len(p.Pools) == 0 || (p.Role != access.RoleClinician && p.Role != access.RoleSupport) {
		return nil, nil
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(p.Pools)), ", ")
	args := make([]any, len(p.Pools))
	for i, id := range p.Pools {
		args[i] = id
	}
	ths, err := s.list(ctx, "t.pool_id IN ("+marks+")", args, ByPatient, ByCaregiver)
	if err != nil {
		return nil, err
	}
	// Who waits longest first; then the open threads no one waits on;
	// then those set aside as done.
	rank := func(t Thread) int {
		switch {
		case t.Status == Done:
			return 2
		case t.Waiting.IsZero():
			return 1
		}
		return 0
	}
	slices.SortStableFunc(ths, func(a, b Thread) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		if rank(a) == 0 {
			return a.Due().Compare(b.Due())
		}
		return 0
	})
	var shown []Thread
	var recs []audit.Record
	seen := map[string]bool{}
	for _, th := range ths {
		dec, r, err := d.Decide(ctx, req, access.Read, access.Target{Type: "Communication", ID: th.ID, Patients: []string{th.Patient}, Pool: th.Pool})
		if err != nil {
			return nil, err
		}
		if !dec.Permit {
			continue
		}
		shown = append(shown, th)
		if !seen[th.Patient] {
			seen[th.Patient] = true
			rec := d.AuditRecord(r, audit.SubtypeSearch, audit.Execute)
			rec.Patient, rec.Query = "Patient/"+th.Patient, "Communication?patient="+th.Patient
			recs = append(recs, rec)
		}
	}
	if len(recs) > 0 {
		if err := s.Audit.AppendAll(ctx, recs...); err != nil {
			return nil, err
		}
	}
	return shown, nil
}

// Thread opens a thread with its messages, oldest first, and marks the
// other side's messages read. Every opening is audited, with the person
// (a staff member by name and role) as agent and the patient as subject.
func (s *Store) Thread(ctx context.Context, d Decider, req clinical.Request, id string) (*Thread, error) {
	th, err := s.thread(ctx, id)
	if errors.Is(err, ErrNoThread) {
		if rerr := s.Audit.Append(ctx, s.missing(d, req, id)); rerr != nil {
			return nil, rerr
		}
	}
	if err != nil {
		return nil, err
	}
	dec, req, err := d.Decide(ctx, req, access.Read, access.Target{Type: "Communication", ID: th.ID, Patients: []string{th.Patient}, Pool: th.Pool})
	if err != nil {
		return nil, err
	}
	rec := d.AuditRecord(req, audit.SubtypeRead, audit.Read)
	rec.Patient = "Patient/" + th.Patient
	if !dec.Permit {
		rec.Entities = []audit.Entity{{What: "Communication/" + th.ID}}
		return nil, s.refuse(ctx, rec, dec.Reason, ErrNoThread)
	}
	staff := req.Principal.Role != ""
	now := s.now()
	var ms []Message
	err = s.DB.Write(ctx, func(tx *sqldb.Tx) error {
		var err error
		if ms, err = s.messages(ctx, tx, th.ID); err != nil {
			return err
		}
		for i := range ms {
			theirs := (ms[i].AuthorKind == ByStaff || ms[i].AuthorKind == ByCarefront) != staff
			if theirs && ms[i].ReadAt.IsZero() {
				if _, err := tx.Exec(ctx, "UPDATE message SET read_at = ? WHERE id = ? AND read_at IS NULL", now.UnixMicro(), ms[i].ID); err != nil {
					return err
				}
				ms[i].ReadAt = now
			}
			rec.Entities = append(rec.Entities, audit.Entity{What: "Communication/" + ms[i].ID})
		}
		return s.stage(ctx, tx, rec)
	})
	if err != nil {
		return nil, err
	}
	th.Messages = ms
	return th, s.Audit.Chain(ctx)
}

// Assign makes a member of the thread's pool its owner (to, a staff
// account of the pool; "" gives it back to the pool), and MarkDone sets a
// thread aside as answered (a new message from the patient's side opens it
// again). Only members of the thread's pool may; anyone else gets
// ErrNoThread. Both are audited.
func (s *Store) Assign(ctx context.Context, d Decider, req clinical.Request, thread, to string) error {
	return s.change(ctx, d, req, thread, "thread-assigned", func(ctx context.Context, tx *sqldb.Tx, th *Thread) error {
		if to != "" {
			var n int
			if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM message_pool_member WHERE pool_id = ? AND account_id = ?", th.Pool, to).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return apperr.New(apperr.Invalid, "a thread is assigned to a member of its pool")
			}
		}
		_, err := tx.Exec(ctx, "UPDATE message_thread SET assigned_to = ? WHERE id = ?", nullable(to), th.ID)
		return err
	})
}

// MarkDone sets a thread aside as answered; see Assign.
func (s *Store) MarkDone(ctx context.Context, d Decider, req clinical.Request, thread string) error {
	return s.change(ctx, d, req, thread, "thread-done", func(ctx context.Context, tx *sqldb.Tx, th *Thread) error {
		_, err := tx.Exec(ctx, "UPDATE message_thread SET status = ? WHERE id = ?", Done, th.ID)
		return err
	})
}

// change applies a staff member's change to a thread of their pool.
func (s *Store) change(ctx context.Context, d Decider, req clinical.Request, id, reason string, fn func(context.Context, *sqldb.Tx, *Thread) error) error {
	th, err := s.thread(ctx, id)
	if err != nil {
		return err
	}
	if req.Principal.Role == "" {
		return ErrNoThread
	}
	dec, req, err := d.Decide(ctx, req, access.Write, access.Target{Type: "Communication", ID: th.ID, Patients: []string{th.Patient}, Pool: th.Pool})
	if err != nil {
		return err
	}
	rec := d.AuditRecord(req, audit.SubtypeUpdate, audit.Update)
	rec.Patient, rec.Reason = "Patient/"+th.Patient, reason
	if !dec.Permit {
		return s.refuse(ctx, rec, dec.Reason, ErrNoThread)
	}
	err = s.DB.Write(ctx, func(tx *sqldb.Tx) error {
		if err := fn(ctx, tx, th); err != nil {
			return err
		}
		return s.stage(ctx, tx, rec)
	})
	if err != nil {
		return err
	}
	return s.Audit.Chain(ctx)
}

// missing is the audit record of an attempt to open a thread that does not
// exist.
func (s *Store) missing(d Decider, req clinical.Request, id string) audit.Record {
	rec := d.AuditRecord(req, audit.SubtypeRead, audit.Read)
	rec.Outcome, rec.Reason = audit.MinorFailure, string(apperr.NotFound)
	if req.Principal.Patient != "" {
		rec.Patient = "Patient/" + req.Principal.Patient
	}
	return rec
}

// refuse audits a refused access with its reason and returns err.
func (s *Store) refuse(ctx context.Context, rec audit.Record, reason string, err error) error {
	rec.Outcome, rec.Reason = audit.MinorFailure, reason
	if aerr := s.Audit.Append(ctx, rec); aerr != nil {
		return aerr
	}
	return err
}

// add writes, in tx, a message with its files, the notices of it and,
// outside office hours, the automatic reply.
func (s *Store) add(ctx context.Context, tx *sqldb.Tx, th *Thread, m *Message, atts []*Attachment, now time.Time) error {
	if err := s.insert(ctx, tx, m, now); err != nil {
		return err
	}
	if err := s.insertFiles(ctx, tx, m, atts, now); err != nil {
		return err
	}
	if err := s.notify(ctx, tx, th, m); err != nil {
		return err
	}
	return s.officeHoursReply(ctx, tx, th, m, now)
}

// officeHoursReply adds, in tx, carefront's automatic reply to a message
// from the patient's side written outside office hours: once until the team
// answers. It is audited as carefront's own.
func (s *Store) officeHoursReply(ctx context.Context, tx *sqldb.Tx, th *Thread, m *Message, now time.Time) error {
	if s.Hours == nil || (m.AuthorKind != ByPatient && m.AuthorKind != ByCaregiver) || s.Hours.Open(now) {
		return nil
	}
	next := s.Hours.Next(now)
	if next.IsZero() {
		return nil
	}
	var already int
	err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM message WHERE thread_id = ? AND author_kind = ? AND sent > COALESCE(
		(SELECT MAX(a.sent) FROM message a WHERE a.thread_id = ? AND a.author_kind = ?), 0)`, th.ID, ByCarefront, th.ID, ByStaff).Scan(&already)
	if err != nil || already > 0 {
		return err
	}
	reply := &Message{ID: newID(), Thread: th.ID, AuthorKind: ByCarefront, Text: autoReply(th.PoolName, next, s.Hours.loc)}
	if err := s.insert(ctx, tx, reply, now.Add(time.Microsecond)); err != nil {
		return err
	}
	return s.stage(ctx, tx, audit.Record{Type: audit.TypeRESTful, Subtype: []audit.Coding{audit.SubtypeCreate}, Action: audit.Create,
		Outcome: audit.Success, Reason: "office-hours-reply", Client: "carefront", Patient: "Patient/" + th.Patient,
		Entities: []audit.Entity{{What: "Communication/" + reply.ID}}})
}

// notify queues, in tx, the notices of a new message m in thread th: to the
// members of the pool when the patient's side wrote; otherwise to the
// patient's own account and to every caregiver who wrote in the thread.
func (s *Store) notify(ctx context.Context, tx *sqldb.Tx, th *Thread, m *Message) error {
	if s.Notices == nil || m.AuthorKind == ByCarefront {
		return nil
	}
	if m.AuthorKind == ByPatient || m.AuthorKind == ByCaregiver {
		return s.noticeAll(ctx, tx, NoticeNewForTeam, "SELECT account_id FROM message_pool_member WHERE pool_id = ? ORDER BY account_id", th.Pool)
	}
	if err := s.Notices.QueuePatientNotice(ctx, tx, th.Patient, NoticeNewMessage); err != nil {
		return err
	}
	return s.noticeAll(ctx, tx, NoticeNewMessage, "SELECT DISTINCT author FROM message WHERE thread_id = ? AND author_kind = ? ORDER BY author", th.ID, ByCaregiver)
}

// noticeAll queues event to every account the query names.
func (s *Store) noticeAll(ctx context.Context, tx *sqldb.Tx, event, query string, args ...any) error {
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	accounts, err := scanStrings(rows)
	if err != nil {
		return err
	}
	for _, a := range accounts {
		if err := s.Notices.QueueNotice(ctx, tx, a, event); err != nil {
			return err
		}
	}
	return nil
}

func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// insert writes a message, its text sealed to its row.
func (s *Store) insert(ctx context.Context, tx *sqldb.Tx, m *Message, now time.Time) error {
	body, err := s.Keys.Seal([]byte(m.Text), seal.Binding{Table: "message", Column: "body", Row: m.ID})
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, "INSERT INTO message (id, thread_id, author, author_kind, author_name, body, created, sent) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		m.ID, m.Thread, nullable(m.Author), m.AuthorKind, nullable(m.AuthorName), body, now.UnixMicro(), now.UnixMicro())
	return err
}

// thread reads a thread's row (not its messages), or ErrNoThread.
func (s *Store) thread(ctx context.Context, id string) (*Thread, error) {
	ths, err := s.list(ctx, "t.id = ?", []any{id})
	if err != nil {
		return nil, err
	}
	if len(ths) == 0 {
		return nil, ErrNoThread
	}
	return &ths[0], nil
}

// list reads the threads matching where, newest first (open before done),
// counting as unread the sent messages of the given author kinds not yet
// opened.
func (s *Store) list(ctx context.Context, where string, args []any, unreadKinds ...string) ([]Thread, error) {
	kinds := "''"
	if len(unreadKinds) > 0 {
		kinds = "'" + strings.Join(unreadKinds, "', '") + "'"
	}
	q := `SELECT t.id, t.patient_id, t.pool_id, p.name, p.response_mins, t.subject, t.status, t.assigned_to, t.created, t.updated,
		(SELECT COUNT(*) FROM message m WHERE m.thread_id = t.id AND m.sent IS NOT NULL AND m.read_at IS NULL AND m.author_kind IN (` + kinds + `)),
		(SELECT MIN(m.sent) FROM message m WHERE m.thread_id = t.id AND m.sent IS NOT NULL AND m.author_kind IN ('patient', 'caregiver')
			AND m.sent > COALESCE((SELECT MAX(a.sent) FROM message a WHERE a.thread_id = t.id AND a.sent IS NOT NULL AND a.author_kind = 'staff'), 0))
		FROM message_thread t JOIN message_pool p ON p.id = t.pool_id
		WHERE ` + where + ` ORDER BY CASE t.status WHEN 'open' THEN 0 ELSE 1 END, t.updated DESC, t.id`
	var out []Thread
	err := s.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				th               Thread
				mins             int
				subject          []byte
				assigned         sql.NullString
				created, updated int64
				waiting          sql.NullInt64
			)
			if err := rows.Scan(&th.ID, &th.Patient, &th.Pool, &th.PoolName, &mins, &subject, &th.Status, &assigned, &created, &updated, &th.Unread, &waiting); err != nil {
				return err
			}
			if waiting.Valid {
				th.Waiting = time.UnixMicro(waiting.Int64).UTC()
			}
			plain, err := s.Keys.Open(subject, seal.Binding{Table: "message_thread", Column: "subject", Row: th.ID})
			if err != nil {
				return err
			}
			th.Subject, th.ResponseTime, th.AssignedTo = string(plain), time.Duration(mins)*time.Minute, assigned.String
			th.Created, th.Updated = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
			out = append(out, th)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "the messages could not be read")
	}
	return out, nil
}

// messages reads a thread's sent messages, oldest first, opening their
// text.
func (s *Store) messages(ctx context.Context, tx *sqldb.Tx, thread string) ([]Message, error) {
	rows, err := tx.Query(ctx, `SELECT id, author, author_kind, author_name, body, sent, read_at FROM message
		WHERE thread_id = ? AND sent IS NOT NULL ORDER BY sent, id`, thread)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		var (
			m            Message
			author, name sql.NullString
			body         []byte
			sent         int64
			read         sql.NullInt64
		)
		if err := rows.Scan(&m.ID, &author, &m.AuthorKind, &name, &body, &sent, &read); err != nil {
			return nil, err
		}
		plain, err := s.Keys.Open(body, seal.Binding{Table: "message", Column: "body", Row: m.ID})
		if err != nil {
			return nil, err
		}
		m.Thread, m.Author, m.AuthorName, m.Text, m.Sent = thread, author.String, name.String, string(plain), time.UnixMicro(sent).UTC()
		if read.Valid {
			m.ReadAt = time.UnixMicro(read.Int64).UTC()
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	return out, s.attachInfos(ctx, tx, thread, out)
}

// MaxFiles is how many files one message may carry.
const MaxFiles = 1

// checkFiles checks a message's files (CheckAttachment).
func checkFiles(ctx context.Context, files []Upload) ([]*Attachment, error) {
	if len(files) > MaxFiles {
		return nil, inputError("attachment", "attachment-many", "attach one file to a message")
	}
	var out []*Attachment
	for _, f := range files {
		a, err := CheckAttachment(ctx, f)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func infos(atts []*Attachment) []AttachmentInfo {
	var out []AttachmentInfo
	for _, a := range atts {
		out = append(out, AttachmentInfo{ID: a.ID, Name: a.Name, ContentType: a.ContentType, Size: a.Size})
	}
	return out
}

// insertFiles writes a message's files, name and bytes sealed to their
// row.
func (s *Store) insertFiles(ctx context.Context, tx *sqldb.Tx, m *Message, atts []*Attachment, now time.Time) error {
	for _, a := range atts {
		name, err := s.Keys.Seal([]byte(a.Name), seal.Binding{Table: "message_attachment", Column: "name", Row: a.ID})
		if err != nil {
			return err
		}
		data, err := s.Keys.Seal(a.Data, seal.Binding{Table: "message_attachment", Column: "data", Row: a.ID})
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO message_attachment (id, message_id, thread_id, name, content_type, size, data, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			a.ID, m.ID, m.Thread, name, a.ContentType, a.Size, data, now.UnixMicro()); err != nil {
			return err
		}
	}
	return nil
}

// attachInfos adds to a thread's messages the descriptions of their files.
func (s *Store) attachInfos(ctx context.Context, tx *sqldb.Tx, thread string, ms []Message) error {
	rows, err := tx.Query(ctx, "SELECT id, message_id, name, content_type, size FROM message_attachment WHERE thread_id = ? ORDER BY created, id", thread)
	if err != nil {
		return err
	}
	defer rows.Close()
	at := map[string]int{}
	for i := range ms {
		at[ms[i].ID] = i
	}
	for rows.Next() {
		var (
			a       AttachmentInfo
			message string
			name    []byte
		)
		if err := rows.Scan(&a.ID, &message, &name, &a.ContentType, &a.Size); err != nil {
			return err
		}
		plain, err := s.Keys.Open(name, seal.Binding{Table: "message_attachment", Column: "name", Row: a.ID})
		if err != nil {
			return err
		}
		a.Name = string(plain)
		if i, ok := at[message]; ok {
			ms[i].Attachments = append(ms[i].Attachments, a)
		}
	}
	return rows.Err()
}

// File returns a file of a thread's message, with its bytes, for someone
// who may read the thread: decided and audited as a read of the message
// (another person's, or a missing one, is ErrNoThread).
func (s *Store) File(ctx context.Context, d Decider, req clinical.Request, thread, id string) (*Attachment, error) {
	th, err := s.thread(ctx, thread)
	if err != nil {
		return nil, err
	}
	dec, req, err := d.Decide(ctx, req, access.Read, access.Target{Type: "Communication", ID: th.ID, Patients: []string{th.Patient}, Pool: th.Pool})
	if err != nil {
		return nil, err
	}
	rec := d.AuditRecord(req, audit.SubtypeRead, audit.Read)
	rec.Patient = "Patient/" + th.Patient
	if !dec.Permit {
		return nil, s.refuse(ctx, rec, dec.Reason, ErrNoThread)
	}
	var (
		a          Attachment
		message    string
		name, data []byte
	)
	err = s.DB.ReadOne(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT id, message_id, name, content_type, size, data FROM message_attachment WHERE id = ? AND thread_id = ?", id, th.ID).
			Scan(&a.ID, &message, &name, &a.ContentType, &a.Size, &data)
	})
	if errors.Is(err, sql.ErrNoRows) {
		rec.Outcome, rec.Reason = audit.MinorFailure, string(apperr.NotFound)
		if aerr := s.Audit.Append(ctx, rec); aerr != nil {
			return nil, aerr
		}
		return nil, apperr.New(apperr.NotFound, "there is no such file")
	}
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "the file could not be read")
	}
	plainName, err := s.Keys.Open(name, seal.Binding{Table: "message_attachment", Column: "name", Row: a.ID})
	if err != nil {
		return nil, err
	}
	if a.Data, err = s.Keys.Open(data, seal.Binding{Table: "message_attachment", Column: "data", Row: a.ID}); err != nil {
		return nil, err
	}
	a.Name = string(plainName)
	rec.Entities = []audit.Entity{{What: "Communication/" + message}}
	if err := s.Audit.Append(ctx, rec); err != nil {
		return nil, err
	}
	return &a, nil
}
