package audit

import (
	"context"
	"crypto/hmac"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"carefront/internal/sqldb"
	"carefront/internal/telemetry"
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit: writer closed")

// Options configure a Writer.
type Options struct {
	Signer *Signer
	// Observer names this server in source.observer, e.g. "carefront@host".
	Observer string
	// CheckpointEvery signs a checkpoint at least every this many records,
	// and CheckpointInterval at least this often while records are written
	// (default 10s); one is also signed on Close, and at start for a tail a
	// crash left unsigned (a recovery checkpoint).
	CheckpointEvery    int
	CheckpointInterval time.Duration
	// MaxBatch bounds the records committed together.
	MaxBatch int
	// MaxWait bounds how long a commit waits for appenders already inside
	// Append to join its batch (default 2ms). A lone appender never waits.
	MaxWait time.Duration
	// Observe, if set, is told of every commit, for metrics.
	Observe func(records int, took time.Duration, err error)
	// MACKeys, by key id, check records other instances staged (with their
	// own key, before or after a rotation); the Signer's own is always in.
	MACKeys map[string][]byte
}

// Writer appends records to the chain. Appends from concurrent requests are
// gathered into one transaction (group commit), and commits are pipelined:
// while one batch is being flushed to disk the next one commits, so a
// durable commit's fsync is shared by everyone waiting and overlaps useful
// work. Append returns only once its record is on disk, and an error when it
// could not be made so: no record is lost silently.
type Writer struct {
	db   *sqldb.DB
	opts Options

	reqs    chan *pending
	flushes chan *group
	done    chan struct{}
	// inflight counts callers inside Append; unflushed counts those whose
	// batch is committed and waiting in the flush stage. gather uses them to
	// size batches (see gather).
	inflight  atomic.Int64
	unflushed atomic.Int64
	peak      int64 // recent peak of inflight; only loop touches it

	// mu guards closed; Append holds it for reading while it enqueues so
	// that Close never closes reqs under a sender.
	mu     sync.RWMutex
	closed bool
	// finalErr is the final checkpoint's error, set by loop before it
	// closes done.
	finalErr error
	// highest is the highest position this writer has seen the chain at:
	// the head never goes back, and if it does (records removed from the
	// tail by hand) the writer refuses to sign over the gap.
	highest atomic.Int64
	// head is the chain head as this writer's last commit left it, for
	// appending in one statement (commitAfter); only loop's goroutine
	// touches it. It may be stale: the append checks it.
	head struct {
		seq  int64
		hash []byte
	}
}

type pending struct {
	canonical []byte // nil for a request to chain staged records only
	cols      columns
	result    chan error
}

// group is one committed batch waiting for its flush.
type group struct {
	batch []*pending
	start time.Time
}

// NewWriter starts a Writer. Close it to flush and sign a final checkpoint.
func NewWriter(db *sqldb.DB, opts Options) *Writer {
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = 1000
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = 10 * time.Second
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 2 * time.Millisecond
	}
	if opts.Observer == "" {
		opts.Observer = "carefront"
	}
	if opts.Signer != nil {
		keys := map[string][]byte{opts.Signer.KeyID: opts.Signer.macKey}
		for id, k := range opts.MACKeys {
			keys[id] = k
		}
		opts.MACKeys = keys
	}
	w := &Writer{
		db: db, opts: opts,
		reqs:    make(chan *pending, opts.MaxBatch),
		flushes: make(chan *group, 4),
		done:    make(chan struct{}),
	}
	flushed := make(chan struct{})
	go w.flushLoop(flushed)
	go w.loop(flushed)
	return w
}

// Stage validates r and inserts it in tx, the transaction of the change it
// records, so that the change and its record commit together or not at
// all. After tx commits, call Chain: it moves the staged records into the
// hash chain. If the process dies in between, the next writer to start (or
// any running writer, at its next idle tick) chains them.
//
// Staging keeps the caller's transaction off the chain head: other
// requests' appends do not wait for that whole transaction.
func (w *Writer) Stage(ctx context.Context, tx *sqldb.Tx, r Record) error {
	if w.opts.Signer == nil {
		return errors.New("audit: no signing key")
	}
	b, _, err := w.encode(ctx, r)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "INSERT INTO audit_staged (event, mac, mac_key) VALUES (?, ?, ?)",
		b, stagedMAC(w.opts.Signer.macKey, b), w.opts.Signer.KeyID); err != nil {
		return fmt.Errorf("audit: stage: %w", err)
	}
	return nil
}

// Chain moves every committed staged record into the chain and waits until
// they are on disk.
func (w *Writer) Chain(ctx context.Context) error {
	w.inflight.Add(1)
	defer w.inflight.Add(-1)
	p := &pending{result: make(chan error, 1)}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return ErrClosed
	}
	select {
	case w.reqs <- p:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		return fmt.Errorf("audit: staged records not chained yet: %w", ctx.Err())
	}
	return <-p.result
}

// Append validates r, stamps it with the current time and waits until it is
// committed to the chain and on disk. An invalid record (free text, a
// malformed reference) is refused before anything is written.
func (w *Writer) Append(ctx context.Context, r Record) error {
	return w.AppendAll(ctx, r)
}

// AppendAll is Append for several records (one search's record per patient
// found): they are queued together and the call returns once all are on
// disk, or with the first error.
func (w *Writer) AppendAll(ctx context.Context, rs ...Record) error {
	w.inflight.Add(int64(len(rs)))
	defer w.inflight.Add(-int64(len(rs)))
	ps := make([]*pending, len(rs))
	for i, r := range rs {
		b, cols, err := w.encode(ctx, r)
		if err != nil {
			return err
		}
		ps[i] = &pending{canonical: b, cols: cols, result: make(chan error, 1)}
	}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return ErrClosed
	}
	queued := 0
	for _, p := range ps {
		select {
		case w.reqs <- p:
			queued++
			continue
		case <-ctx.Done():
		}
		break
	}
	w.mu.RUnlock()
	// Once queued a record will be committed or fail; wait for the truth
	// rather than the caller's deadline, so no caller reports a lost record
	// as written or a written one as lost.
	var first error
	for _, p := range ps[:queued] {
		if err := <-p.result; err != nil && first == nil {
			first = err
		}
	}
	if queued < len(ps) && first == nil {
		first = fmt.Errorf("audit: not recorded: %w", ctx.Err())
	}
	return first
}

// encode validates and shapes r, with the request id of ctx when r has
// none, and returns its canonical bytes and indexed columns.
func (w *Writer) encode(ctx context.Context, r Record) ([]byte, columns, error) {
	if r.RequestID == "" {
		r.RequestID = telemetry.RequestID(ctx)
	}
	ev, err := shape(r, w.db.Now(), w.opts.Observer)
	if err != nil {
		return nil, columns{}, err
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, columns{}, fmt.Errorf("audit: encode: %w", err)
	}
	return b, columnsOf(ev), nil
}

// Close stops accepting records, commits and flushes the ones queued, signs
// a final checkpoint and returns when done or when ctx ends. Its error says
// the final checkpoint could not be signed, or ctx ended first.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.reqs)
	}
	w.mu.Unlock()
	select {
	case <-w.done:
		return w.finalErr
	case <-ctx.Done():
		return fmt.Errorf("audit: close: %w", ctx.Err())
	}
}

// loop is the commit stage: it gathers batches, commits each without
// waiting for the disk, and hands it to the flush stage.
func (w *Writer) loop(flushed chan struct{}) {
	defer close(w.done)
	// What a crash left behind comes first: staged records (committed with
	// their change, not yet chained) are chained, and a tail no checkpoint
	// covers is signed as a recovery checkpoint.
	w.commitStaged()
	w.checkpoint(KindRecovery)
	// Ticking at half the interval keeps every record signed within the
	// interval of being written.
	idle := time.NewTicker(w.opts.CheckpointInterval / 2)
	defer idle.Stop()
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	dirty := false // records committed since the last checkpoint
	for {
		var first *pending
		select {
		case p, ok := <-w.reqs:
			if !ok {
				close(w.flushes)
				<-flushed
				if dirty {
					w.finalErr = w.checkpoint(KindShutdown)
				}
				return
			}
			first = p
		case <-idle.C:
			// Another instance may have died between a commit and its
			// Chain; its staged records are chained here.
			if n, err := w.commitStaged(); err == nil && n > 0 {
				dirty = true
			}
			if dirty {
				if w.checkpoint(KindTime) == nil {
					dirty = false
				}
			}
			continue
		}
		// The flush stage keeps the batch until its waiters are answered,
		// so each batch gets a slice of its own.
		batch := w.gather(append(make([]*pending, 0, 16), first), wait)
		start := time.Now()
		// On PostgreSQL, with the flush stage idle and nobody queued,
		// there is nothing to overlap a flush with: the batch commits
		// durably here, one commit instead of two. (On SQLite the
		// pipeline wins even then: the next batch commits during the
		// sync.)
		durable := w.db.Dialect == sqldb.Postgres && w.unflushed.Load() == 0 && len(w.reqs) == 0
		checkpointed, err := w.commit(batch, durable)
		if err != nil || durable {
			w.observe(len(batch), start, err)
			for _, p := range batch {
				p.result <- err
			}
			if err == nil {
				dirty = !checkpointed
			}
			continue
		}
		dirty = !checkpointed
		w.unflushed.Add(int64(len(batch)))
		w.flushes <- &group{batch: batch, start: start}
	}
}

// flushLoop is the flush stage: it makes committed batches durable, as many
// at once as have queued up during the previous flush, then answers their
// callers.
func (w *Writer) flushLoop(flushed chan struct{}) {
	defer close(flushed)
	var groups []*group
	for g := range w.flushes {
		groups = append(groups[:0], g)
	more:
		for {
			select {
			case g, ok := <-w.flushes:
				if !ok {
					break more
				}
				groups = append(groups, g)
			default:
				break more
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := w.db.Flush(ctx)
		cancel()
		for _, g := range groups {
			w.observe(len(g.batch), g.start, err)
			w.unflushed.Add(-int64(len(g.batch)))
			for _, p := range g.batch {
				p.result <- err
			}
		}
	}
}

func (w *Writer) observe(n int, start time.Time, err error) {
	if w.opts.Observe != nil {
		w.opts.Observe(n, time.Since(start), err)
	}
}

// gather adds queued records to batch until the batch, with the records
// waiting in the flush stage, holds as many callers as recently were inside
// Append at once, or half of them; or MaxBatch is reached, or MaxWait has
// passed. Callers
// answered by the last flush are still on their way back when the loop
// first looks at the queue; without waiting for them, batches on a few
// cores shrink to a record or two and each pays a commit of its own. With
// many callers, batches settle into two groups: one commits while the other
// is flushed. A lone caller never waits.
func (w *Writer) gather(batch []*pending, wait *time.Timer) []*pending {
	w.peak = max(w.inflight.Load(), w.peak-1)
	var deadline time.Time
	for len(batch) < w.opts.MaxBatch {
		select {
		case p, ok := <-w.reqs:
			if !ok {
				return batch
			}
			batch = append(batch, p)
			continue
		default:
		}
		if n := int64(len(batch)); n+w.unflushed.Load() >= w.peak || n >= (w.peak+1)/2 {
			return batch
		}
		now := time.Now()
		if deadline.IsZero() {
			deadline = now.Add(w.opts.MaxWait)
		}
		if !now.Before(deadline) {
			return batch
		}
		wait.Reset(deadline.Sub(now))
		select {
		case p, ok := <-w.reqs:
			wait.Stop()
			if !ok {
				return batch
			}
			batch = append(batch, p)
		case <-wait.C:
		}
	}
	return batch
}

// commit appends batch to the chain and reports whether it also signed a
// checkpoint. When durable is false the commit does not wait for the disk
// and the caller must Flush before answering.
func (w *Writer) commit(batch []*pending, durable bool) (checkpointed bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if done, err := w.commitAfter(ctx, batch, durable); done || err != nil {
		return false, err
	}
	// Every append holds the head lock, so a unique violation here is
	// not expected; should one happen, the head is read again.
	for attempt := 1; ; attempt++ {
		checkpointed, err = w.commitLocked(ctx, batch, durable)
		if err == nil || attempt == 3 || !sqldb.IsUniqueViolation(err) {
			return checkpointed, err
		}
	}
}

// commitAfter appends batch in one statement after the head this writer
// last left, and only if that is still the head and, on PostgreSQL, the
// head lock is free (the statement takes it): one round trip instead of
// five there, and on SQLite (whose one writer excludes the others anyway)
// no transaction to begin and no head to read first.
// It reports false when it did not apply (no head known, staged records or
// a checkpoint due, another instance appended since or holds the lock),
// and commit waits for the lock instead. Should two appends ever meet at
// one position anyway (a statement's snapshot predates the commit of the
// lock's last holder), seq is the primary key: the later one fails as a
// whole, and goes the locked way.
func (w *Writer) commitAfter(ctx context.Context, batch []*pending, durable bool) (bool, error) {
	seq, prev := w.head.seq, w.head.hash
	if seq == 0 || len(batch) > perInsert || w.opts.Signer == nil {
		return false, nil
	}
	for _, p := range batch {
		if p.canonical == nil {
			return false, nil
		}
	}
	if every := int64(w.opts.CheckpointEvery); seq/every != (seq+int64(len(batch)))/every {
		return false, nil
	}
	if err := w.checkHead(seq); err != nil {
		return false, err
	}
	q, args, last, hash := insertStatement(w.db.Dialect, w.opts.Signer, seq, prev, batch, true)
	var inserted int64
	write := w.db.WriteOneNoWait
	if durable {
		write = w.db.WriteOne
	}
	err := write(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, q, args...)
		if err != nil {
			return err
		}
		inserted, err = res.RowsAffected()
		return err
	})
	switch {
	case sqldb.IsUniqueViolation(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("audit: insert: %w", err)
	case inserted == 0:
		return false, nil
	case inserted != int64(len(batch)):
		return false, fmt.Errorf("audit: insert: %d of %d records written", inserted, len(batch))
	}
	w.head.seq, w.head.hash = last, hash
	w.saw(last)
	return true, nil
}

// commitLocked appends batch in one transaction holding the head lock.
func (w *Writer) commitLocked(ctx context.Context, batch []*pending, durable bool) (checkpointed bool, err error) {
	var head int64
	var headHash []byte
	defer func() {
		if err == nil {
			w.saw(head)
			w.head.seq, w.head.hash = head, headHash
		}
	}()
	write := w.db.WriteNoWait
	if durable {
		write = w.db.Write
	}
	err = write(ctx, func(tx *sqldb.Tx) error {
		checkpointed = false
		seq, prev, err := lockHead(ctx, tx)
		if err != nil {
			return err
		}
		signer := w.opts.Signer
		if signer == nil {
			return errors.New("audit: no signing key")
		}
		if err := w.checkHead(seq); err != nil {
			return err
		}
		first := seq + 1
		records := make([]*pending, 0, len(batch))
		for _, p := range batch {
			if p.canonical == nil {
				staged, err := w.takeStaged(ctx, tx)
				if err != nil {
					return err
				}
				records = append(records, staged...)
				continue
			}
			records = append(records, p)
		}
		if seq, prev, err = insertRecords(ctx, tx, signer, seq, prev, records); err != nil {
			return err
		}
		head, headHash = seq, prev
		every := int64(w.opts.CheckpointEvery)
		if (first-1)/every != seq/every {
			checkpointed = true
			return w.insertCheckpoint(ctx, tx, seq, prev, KindCount)
		}
		return nil
	})
	return checkpointed, err
}

// perInsert bounds the rows of one INSERT (12 parameters a row).
const perInsert = 100

// insertRecords appends records after (seq, prev), each with its MAC under
// signer's key, and returns the new head.
func insertRecords(ctx context.Context, tx *sqldb.Tx, signer *Signer, seq int64, prev []byte, records []*pending) (int64, []byte, error) {
	for start := 0; start < len(records); start += perInsert {
		q, args, last, hash := insertStatement(tx.Dialect(), signer, seq, prev, records[start:min(start+perInsert, len(records))], false)
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return 0, nil, fmt.Errorf("audit: insert: %w", err)
		}
		seq, prev = last, hash
	}
	return seq, prev, nil
}

// insertStatement is the INSERT of records after (seq, prev), with the
// new head. guarded makes the statement insert nothing unless the chain's
// last record is still the one hashed prev (and, on PostgreSQL, the head
// lock was free and is now held).
func insertStatement(d sqldb.Dialect, signer *Signer, seq int64, prev []byte, records []*pending, guarded bool) (string, []any, int64, []byte) {
	after := prev
	var q strings.Builder
	q.WriteString("INSERT INTO audit_event (seq, recorded, type_code, action, outcome, patient, request_id, event, prev_hash, hash, mac, mac_key) ")
	row := "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	switch {
	case guarded && d == sqldb.Postgres:
		// VALUES in a subquery takes its column types from its first row.
		q.WriteString("SELECT * FROM (VALUES ")
		row = "(?::bigint, ?::text, ?::text, ?::text, ?::text, ?::text, ?::text, ?::bytea, ?::bytea, ?::bytea, ?::bytea, ?::text)"
	case guarded:
		q.WriteString("SELECT * FROM (VALUES ")
	default:
		q.WriteString("VALUES ")
	}
	args := make([]any, 0, len(records)*12+2)
	for i, p := range records {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(row)
		seq++
		hash := chainHash(prev, seq, p.canonical)
		args = append(args, seq, p.cols.Recorded, p.cols.TypeCode, p.cols.Action, p.cols.Outcome,
			nullable(p.cols.Patient), nullable(p.cols.RequestID), p.canonical, prev, hash,
			recordMAC(signer.macKey, seq, hash), signer.KeyID)
		prev = hash
	}
	switch {
	case guarded && d == sqldb.Postgres:
		// The head lock, only if free: an append never runs beside a
		// locked one, and a busy lock sends this one to the locked path.
		q.WriteString(") AS v WHERE pg_try_advisory_xact_lock(?) AND (SELECT hash FROM audit_event ORDER BY seq DESC LIMIT 1) = ?")
		args = append(args, int64(headLockID), after)
	case guarded:
		q.WriteString(") AS v WHERE (SELECT hash FROM audit_event ORDER BY seq DESC LIMIT 1) = ?")
		args = append(args, after)
	}
	return q.String(), args, seq, prev
}

// takeStaged deletes every committed staged record and returns them in the
// order they were staged. The caller holds the chain head, so no other
// writer takes the same rows. A row whose MAC does not check (inserted or
// edited in the database by hand) is not chained: it is deleted, and a
// Security Alert record, without its content, takes its place.
func (w *Writer) takeStaged(ctx context.Context, tx *sqldb.Tx) ([]*pending, error) {
	rows, err := tx.Query(ctx, "SELECT id, event, mac, mac_key FROM audit_staged ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("audit: read staged: %w", err)
	}
	var ids []any
	var out []*pending
	for rows.Next() {
		var (
			id       int64
			b, mac   []byte
			macKeyID string
		)
		if err := rows.Scan(&id, &b, &mac, &macKeyID); err != nil {
			rows.Close()
			return nil, fmt.Errorf("audit: read staged: %w", err)
		}
		ids = append(ids, id)
		key, known := w.opts.MACKeys[macKeyID]
		ev, perr := parseEvent(b)
		if !known || !hmac.Equal(mac, stagedMAC(key, b)) || perr != nil {
			alert, err := w.alert("staged-record-refused")
			if err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, alert)
			continue
		}
		out = append(out, &pending{canonical: b, cols: columnsOf(ev)})
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("audit: read staged: %w", err)
	}
	for start := 0; start < len(ids); start += 500 {
		part := ids[start:min(start+500, len(ids))]
		q := "DELETE FROM audit_staged WHERE id IN (?" + strings.Repeat(", ?", len(part)-1) + ")"
		if _, err := tx.Exec(ctx, q, part...); err != nil {
			return nil, fmt.Errorf("audit: take staged: %w", err)
		}
	}
	return out, nil
}

// alert shapes a Security Alert record the writer itself makes.
func (w *Writer) alert(reason string) (*pending, error) {
	ev, err := shape(Record{Type: TypeSecurityAlert, Action: Execute, Outcome: SeriousFailure, Reason: reason}, w.db.Now(), w.opts.Observer)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	return &pending{canonical: b, cols: columnsOf(ev)}, nil
}

// commitStaged chains staged records left by a process that died, if any,
// and reports how many. Only the commit stage calls it (at start and on its
// tick).
func (w *Writer) commitStaged() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n int
	var head int64
	var headHash []byte
	err := w.db.Write(ctx, func(tx *sqldb.Tx) error {
		var waiting int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM audit_staged").Scan(&waiting); err != nil || waiting == 0 {
			return err
		}
		if w.opts.Signer == nil {
			return errors.New("audit: no signing key")
		}
		seq, prev, err := lockHead(ctx, tx)
		if err != nil {
			return err
		}
		if err := w.checkHead(seq); err != nil {
			return err
		}
		staged, err := w.takeStaged(ctx, tx)
		if err != nil || len(staged) == 0 {
			return err
		}
		if head, headHash, err = insertRecords(ctx, tx, w.opts.Signer, seq, prev, staged); err != nil {
			return err
		}
		n = len(staged)
		return nil
	})
	if err == nil && n > 0 {
		w.saw(head)
		w.head.seq, w.head.hash = head, headHash
	}
	return n, err
}

// Checkpoint kinds: what made the writer sign. Only the signature's
// coverage (seq, hash, time) is signed; the kind is for people.
const (
	KindCount    = "count"    // CheckpointEvery records were written
	KindTime     = "time"     // CheckpointInterval passed with records unsigned
	KindShutdown = "shutdown" // the writer closed
	KindRecovery = "recovery" // at start, a tail a crash left unsigned
	KindManual   = "manual"   // an operator asked (Checkpoint)
)

// checkpoint signs the current head unless it is signed already.
func (w *Writer) checkpoint(kind string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return w.db.Write(ctx, func(tx *sqldb.Tx) error {
		seq, hash, err := lockHead(ctx, tx)
		if err != nil || seq == 0 {
			return err
		}
		if err := w.checkHead(seq); err != nil {
			return err
		}
		var last int64
		if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(seq), 0) FROM audit_checkpoint").Scan(&last); err != nil {
			return err
		}
		if last == seq {
			return nil
		}
		return w.insertCheckpoint(ctx, tx, seq, hash, kind)
	})
}

// Checkpoint signs the current head now, e.g. before a backup.
func (w *Writer) Checkpoint() error { return w.checkpoint(KindManual) }

func (w *Writer) insertCheckpoint(ctx context.Context, tx *sqldb.Tx, seq int64, hash []byte, kind string) error {
	if w.opts.Signer == nil {
		return errors.New("audit: no signing key")
	}
	at := w.db.Now().UTC().Format(time.RFC3339Nano)
	sig := w.opts.Signer.sign(checkpointMessage(seq, hash, at))
	_, err := tx.Exec(ctx, "INSERT INTO audit_checkpoint (seq, hash, key_id, signature, signed_at, kind) VALUES (?, ?, ?, ?, ?, ?)",
		seq, hash, w.opts.Signer.KeyID, sig, at, kind)
	if err != nil {
		return fmt.Errorf("audit: checkpoint: %w", err)
	}
	return nil
}

// checkHead refuses a head behind one this writer has seen: records were
// removed from the end of the chain, and signing new ones over the gap
// would hide it.
func (w *Writer) checkHead(seq int64) error {
	if h := w.highest.Load(); seq < h {
		return fmt.Errorf("audit: the chain ends at record %d but this writer saw record %d: records were removed; run carefront audit verify", seq, h)
	}
	return nil
}

// saw notes that the chain reached seq.
func (w *Writer) saw(seq int64) {
	for {
		h := w.highest.Load()
		if seq <= h || w.highest.CompareAndSwap(h, seq) {
			return
		}
	}
}

// headLockID is the PostgreSQL advisory lock that serializes appends from
// several carefront instances into one chain.
const headLockID = 0x6361726566726f // "carefro"

// lockHead reads the chain head, the last record, taking the lock that
// keeps other writers out until the transaction ends (on PostgreSQL an
// advisory lock; on SQLite the write transaction is exclusive). The head is
// derived from the records themselves: there is no head row a database
// administrator could move.
func lockHead(ctx context.Context, tx *sqldb.Tx) (int64, []byte, error) {
	if tx.Dialect() == sqldb.Postgres {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(?)", int64(headLockID)); err != nil {
			return 0, nil, fmt.Errorf("audit: lock head: %w", err)
		}
	}
	var seq int64
	var hash []byte
	err := tx.QueryRow(ctx, "SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1").Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, genesis, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("audit: read head: %w", err)
	}
	if len(hash) != len(genesis) {
		return 0, nil, errors.New("audit: chain head is damaged; run carefront audit verify")
	}
	return seq, hash, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
