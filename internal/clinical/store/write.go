package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
)

// Written is the outcome of one write.
type Written struct {
	Resource *fhir.Resource // nil after a delete
	Status   int            // 200 updated or unchanged, 201 created, 204 deleted
	Changed  bool           // false when the write matched the current version
	Patients []string       // whose compartment the resource is in
}

// parseForWrite parses a resource to be stored and checks every primitive
// value against its FHIR type, so that nothing the store keeps is missed by
// searches later (a birthDate of 1944-13-45 was stored, and never found).
func parseForWrite(raw []byte) (*fhir.Resource, error) {
	r, err := fhir.Parse(raw)
	if err != nil {
		return nil, err
	}
	if err := fhir.ValidatePrimitives(r.Type, r.Raw); err != nil {
		return nil, err
	}
	return r, nil
}

// Create stores a new resource under a new id.
func (s *Store) Create(ctx context.Context, raw []byte) (*Written, error) {
	r, err := parseForWrite(raw)
	if err != nil {
		return nil, err
	}
	var w *Written
	err = s.db.Write(ctx, func(tx *sqldb.Tx) error {
		b := newBatch(tx)
		if w, err = s.put(ctx, b, r, s.newID(), "", true); err != nil {
			return err
		}
		return b.flush(ctx)
	})
	return w, err
}

// Update stores a new version of TYPE/id, creating it if absent (FHIR's
// update-as-create). With ifMatch (an ETag like W/"3" or a bare version)
// it fails with a precondition error unless that is the current version.
// Writing what is already there creates no new version.
func (s *Store) Update(ctx context.Context, typ, id string, raw []byte, ifMatch string) (*Written, error) {
	if err := checkTypeID(typ, id); err != nil {
		return nil, err
	}
	r, err := parseForWrite(raw)
	if err != nil {
		return nil, err
	}
	if r.Type != typ {
		return nil, apperr.New(apperr.Invalid, "the body is a %s, the URL names %s", r.Type, typ)
	}
	if r.ID != "" && r.ID != id {
		return nil, apperr.New(apperr.Invalid, "the body's id differs from the id in the URL")
	}
	var w *Written
	err = s.db.Write(ctx, func(tx *sqldb.Tx) error {
		b := newBatch(tx)
		if w, err = s.put(ctx, b, r, id, ifMatch, false); err != nil {
			return err
		}
		return b.flush(ctx)
	})
	return w, err
}

// UpdateIn is Update inside the caller's write transaction tx, for a
// change that must commit together with others (a booked Appointment with
// its Slot and the claim on it).
func (s *Store) UpdateIn(ctx context.Context, tx *sqldb.Tx, typ, id string, raw []byte, ifMatch string) (*Written, error) {
	if err := checkTypeID(typ, id); err != nil {
		return nil, err
	}
	r, err := parseForWrite(raw)
	if err != nil {
		return nil, err
	}
	if r.Type != typ || (r.ID != "" && r.ID != id) {
		return nil, apperr.New(apperr.Invalid, "the body is not %s/%s", typ, id)
	}
	b := newBatch(tx)
	w, err := s.put(ctx, b, r, id, ifMatch, false)
	if err != nil {
		return nil, err
	}
	return w, b.flush(ctx)
}

// ReadIn is Read inside the caller's transaction tx.
func (s *Store) ReadIn(ctx context.Context, tx *sqldb.Tx, typ, id string) (*fhir.Resource, error) {
	if err := checkTypeID(typ, id); err != nil {
		return nil, err
	}
	return readCurrent(ctx, tx, typ, id)
}

// Delete marks TYPE/id deleted with a new version and removes it from
// search. Deleting what is absent or already deleted succeeds (FHIR).
func (s *Store) Delete(ctx context.Context, typ, id string) (*Written, error) {
	if err := checkTypeID(typ, id); err != nil {
		return nil, err
	}
	var w *Written
	err := s.db.Write(ctx, func(tx *sqldb.Tx) error {
		var err error
		w, err = s.del(ctx, tx, typ, id)
		return err
	})
	return w, err
}

func (s *Store) newID() string {
	if s.NewID != nil {
		return s.NewID()
	}
	return newUUID()
}

// NewUUID makes a random (version 4) UUID, the id of a resource the store
// or a feature writing into it creates.
func NewUUID() string { return newUUID() }

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ParseIfMatch reads an If-Match value: W/"3", "3" or 3.
func ParseIfMatch(v string) (string, error) {
	s := strings.TrimPrefix(strings.TrimSpace(v), "W/")
	s = strings.Trim(s, `"`)
	if n, err := strconv.ParseInt(s, 10, 64); err != nil || n < 1 {
		return "", apperr.New(apperr.Invalid, "If-Match must name a version, like W/\"3\"")
	}
	return s, nil
}

// key names one resource.
type key struct{ typ, id string }

// current is what the database holds for one resource.
type current struct {
	version int64
	deleted bool
	hash    []byte
	updated int64
	body    []byte
}

// batch gathers the writes of one transaction so that they reach the
// database in a few multi-row statements instead of several per
// resource. Writes are checked and versioned as they come (put), against
// the state the batch has prefetched plus its own earlier writes, and
// stored by flush.
type batch struct {
	tx    *sqldb.Tx
	state map[key]*current // prefetched or written in this batch
	order []key            // keys with a pending current version, in write order
	rows  map[key][]any    // pending fhir_resource row per key
	index map[key]fhir.Index
	hist  [][]any
	drop  map[string][]string // type -> ids whose old index rows go
}

func newBatch(tx *sqldb.Tx) *batch {
	return &batch{tx: tx, state: map[key]*current{}, rows: map[key][]any{}, index: map[key]fhir.Index{}, drop: map[string][]string{}}
}

// prefetch loads the current state of the given resources in one query
// per type and chunk.
func (b *batch) prefetch(ctx context.Context, keys []key) error {
	byType := map[string][]any{}
	for _, k := range keys {
		if _, ok := b.state[k]; !ok && k.id != "" {
			byType[k.typ] = append(byType[k.typ], k.id)
			b.state[k] = nil // known absent unless found below
		}
	}
	for typ, ids := range byType {
		const chunk = 500
		for start := 0; start < len(ids); start += chunk {
			part := ids[start:min(start+chunk, len(ids))]
			rows, err := b.tx.Query(ctx, "SELECT id, version, deleted, hash, updated, body FROM fhir_resource WHERE type = ? AND id IN ("+placeholders(len(part))+")",
				append([]any{typ}, part...)...)
			if err != nil {
				return fmt.Errorf("prefetch %s: %w", typ, err)
			}
			for rows.Next() {
				var id string
				c := &current{}
				if err := rows.Scan(&id, &c.version, &c.deleted, &c.hash, &c.updated, &c.body); err != nil {
					rows.Close()
					return err
				}
				b.state[key{typ, id}] = c
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

// put checks and versions r as TYPE/id and queues its rows. create insists
// the id is new. Writing what is there already queues nothing.
func (s *Store) put(ctx context.Context, b *batch, r *fhir.Resource, id, ifMatch string, create bool) (*Written, error) {
	k := key{r.Type, id}
	if err := b.prefetch(ctx, []key{k}); err != nil {
		return nil, err
	}
	cur := b.state[k]
	exists := cur != nil
	if create && exists {
		return nil, apperr.New(apperr.Conflict, "%s/%s exists already", r.Type, id)
	}
	if ifMatch != "" {
		want, err := ParseIfMatch(ifMatch)
		if err != nil {
			return nil, err
		}
		if !exists || cur.deleted || strconv.FormatInt(cur.version, 10) != want {
			return nil, apperr.New(apperr.Precondition, "%s/%s is not at version %s; read it again and retry", r.Type, id, want)
		}
	}
	tree, err := fhir.Decode(r.Raw)
	if err != nil {
		return nil, err
	}
	hash, err := fhir.ContentHash(tree, id)
	if err != nil {
		return nil, err
	}
	if exists && !cur.deleted && bytes.Equal(cur.hash, hash[:]) {
		same := &fhir.Resource{Type: r.Type, ID: id, VersionID: strconv.FormatInt(cur.version, 10), LastUpdated: time.UnixMicro(cur.updated).UTC(), Raw: cur.body}
		return &Written{Resource: same, Status: http.StatusOK}, nil
	}
	var version int64 = 1
	if exists {
		version = cur.version + 1
	}
	now := s.now()
	final, err := r.WithMeta(id, strconv.FormatInt(version, 10), now)
	if err != nil {
		return nil, err
	}
	ix := fhir.Extract(r.Type, id, tree) // meta.versionId and lastUpdated index nothing
	s.addLabels(&ix, r.Type, tree)
	if exists {
		if _, queued := b.rows[k]; !queued {
			b.drop[r.Type] = append(b.drop[r.Type], id) // rows from an earlier transaction
		}
	}
	if _, queued := b.rows[k]; !queued {
		b.order = append(b.order, k)
	}
	b.rows[k] = []any{r.Type, id, version, now.UnixMicro(), false, hash[:], []byte(final.Raw)}
	b.index[k] = ix
	b.hist = append(b.hist, []any{r.Type, id, version, now.UnixMicro(), false, []byte(final.Raw)})
	b.state[k] = &current{version: version, hash: hash[:], updated: now.UnixMicro(), body: final.Raw}
	status := http.StatusOK
	if !exists {
		status = http.StatusCreated
	}
	return &Written{Resource: final, Status: status, Changed: true, Patients: ix.Patients}, nil
}

// flush stores everything queued.
func (b *batch) flush(ctx context.Context) error {
	if len(b.order) == 0 {
		return nil
	}
	if err := writeLock(ctx, b.tx); err != nil {
		return err
	}
	for typ, ids := range b.drop {
		for start := 0; start < len(ids); start += 500 {
			part := anys(ids[start:min(start+500, len(ids))])
			for _, t := range []string{"fhir_compartment", "fhir_token", "fhir_ref", "fhir_date"} {
				if _, err := b.tx.Exec(ctx, "DELETE FROM "+t+" WHERE type = ? AND id IN ("+placeholders(len(part))+")", append([]any{typ}, part...)...); err != nil {
					return fmt.Errorf("drop index %s: %w", t, err)
				}
			}
		}
	}
	var res, pats, toks, refs, dates [][]any
	for _, k := range b.order {
		res = append(res, b.rows[k])
		ix := b.index[k]
		for _, p := range ix.Patients {
			pats = append(pats, []any{p, k.typ, k.id})
		}
		for _, t := range ix.Tokens {
			toks = append(toks, []any{k.typ, k.id, t.Param, t.System, t.Code})
		}
		for _, r := range ix.Refs {
			refs = append(refs, []any{k.typ, k.id, r.Param, r.Type, r.ID})
		}
		for _, d := range ix.Dates {
			dates = append(dates, []any{k.typ, k.id, d.Param, d.Lo, d.Hi})
		}
	}
	for _, ins := range []struct {
		head, tail string
		rows       [][]any
	}{
		{"INSERT INTO fhir_resource (type, id, version, updated, deleted, hash, body) VALUES ",
			" ON CONFLICT (type, id) DO UPDATE SET version = excluded.version, updated = excluded.updated, deleted = excluded.deleted, hash = excluded.hash, body = excluded.body", res},
		{"INSERT INTO fhir_history (type, id, version, updated, deleted, body) VALUES ", "", b.hist},
		{"INSERT INTO fhir_compartment (patient, type, id) VALUES ", "", pats},
		{"INSERT INTO fhir_token (type, id, param, system, code) VALUES ", "", toks},
		{"INSERT INTO fhir_ref (type, id, param, target_type, target_id) VALUES ", "", refs},
		{"INSERT INTO fhir_date (type, id, param, lo, hi) VALUES ", "", dates},
	} {
		if err := insertRows(ctx, b.tx, ins.head, ins.tail, ins.rows); err != nil {
			return err
		}
	}
	*b = *newBatch(b.tx)
	return nil
}

func (s *Store) del(ctx context.Context, tx *sqldb.Tx, typ, id string) (*Written, error) {
	var (
		cur     int64
		deleted bool
		body    []byte
	)
	err := tx.QueryRow(ctx, "SELECT version, deleted, body FROM fhir_resource WHERE type = ? AND id = ?", typ, id).Scan(&cur, &deleted, &body)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && deleted) {
		return &Written{Status: http.StatusNoContent}, nil
	}
	if err != nil {
		return nil, err
	}
	var patients []string
	if tree, err := fhir.Decode(body); err == nil {
		patients = fhir.Compartments(typ, id, tree)
	}
	now := s.now()
	if err := writeLock(ctx, tx); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, "UPDATE fhir_resource SET version = ?, updated = ?, deleted = ? WHERE type = ? AND id = ?",
		cur+1, now.UnixMicro(), true, typ, id); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, "INSERT INTO fhir_history (type, id, version, updated, deleted, body) VALUES (?, ?, ?, ?, ?, NULL)",
		typ, id, cur+1, now.UnixMicro(), true); err != nil {
		return nil, err
	}
	if err := dropIndex(ctx, tx, typ, id); err != nil {
		return nil, err
	}
	return &Written{Status: http.StatusNoContent, Changed: true, Patients: patients}, nil
}

func dropIndex(ctx context.Context, tx *sqldb.Tx, typ, id string) error {
	for _, t := range []string{"fhir_compartment", "fhir_token", "fhir_ref", "fhir_date"} {
		if _, err := tx.Exec(ctx, "DELETE FROM "+t+" WHERE type = ? AND id = ?", typ, id); err != nil {
			return fmt.Errorf("drop index %s: %w", t, err)
		}
	}
	return nil
}

// insertRows inserts rows with multi-row statements of at most a fixed
// number of rows (so that the few statement shapes repeat), each followed
// by tail.
func insertRows(ctx context.Context, tx *sqldb.Tx, head, tail string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	per := max(1, 900/len(rows[0]))
	for start := 0; start < len(rows); start += per {
		part := rows[start:min(start+per, len(rows))]
		var q strings.Builder
		q.WriteString(head)
		args := make([]any, 0, len(part)*len(part[0]))
		one := "(" + strings.Repeat("?, ", len(part[0])-1) + "?)"
		for i, row := range part {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString(one)
			args = append(args, row...)
		}
		q.WriteString(tail)
		if _, err := tx.Exec(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
	}
	return nil
}
