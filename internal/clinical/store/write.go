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

// Create stores a new resource under a new id.
func (s *Store) Create(ctx context.Context, raw []byte) (*Written, error) {
	r, err := fhir.Parse(raw)
	if err != nil {
		return nil, err
	}
	var w *Written
	err = s.db.Write(ctx, func(tx *sqldb.Tx) error {
		w, err = s.put(ctx, tx, r, s.newID(), "", true)
		return err
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
	r, err := fhir.Parse(raw)
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
		w, err = s.put(ctx, tx, r, id, ifMatch, false)
		return err
	})
	return w, err
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

// put writes r as TYPE/id inside tx. create insists the id is new.
func (s *Store) put(ctx context.Context, tx *sqldb.Tx, r *fhir.Resource, id, ifMatch string, create bool) (*Written, error) {
	var (
		cur     int64
		deleted bool
		oldHash []byte
		exists  = true
	)
	err := tx.QueryRow(ctx, "SELECT version, deleted, hash FROM fhir_resource WHERE type = ? AND id = ?", r.Type, id).Scan(&cur, &deleted, &oldHash)
	if errors.Is(err, sql.ErrNoRows) {
		exists = false
	} else if err != nil {
		return nil, err
	}
	if create && exists {
		return nil, apperr.New(apperr.Conflict, "%s/%s exists already", r.Type, id)
	}
	if ifMatch != "" {
		want, err := ParseIfMatch(ifMatch)
		if err != nil {
			return nil, err
		}
		if !exists || deleted || strconv.FormatInt(cur, 10) != want {
			return nil, apperr.New(apperr.Precondition, "%s/%s is not at version %s; read it again and retry", r.Type, id, want)
		}
	}
	withID, err := r.WithMeta(id, "0", time.Time{})
	if err != nil {
		return nil, err
	}
	hash, err := fhir.ContentHash(withID.Raw)
	if err != nil {
		return nil, err
	}
	if exists && !deleted && bytes.Equal(oldHash, hash[:]) {
		cr, err := readCurrent(ctx, tx, r.Type, id)
		if err != nil {
			return nil, err
		}
		return &Written{Resource: cr, Status: http.StatusOK}, nil
	}
	version := cur + 1
	now := s.now()
	final, err := r.WithMeta(id, strconv.FormatInt(version, 10), now)
	if err != nil {
		return nil, err
	}
	tree, err := fhir.Decode(final.Raw)
	if err != nil {
		return nil, err
	}
	ix := fhir.Extract(r.Type, id, tree)
	if _, err := tx.Exec(ctx, `INSERT INTO fhir_resource (type, id, version, updated, deleted, hash, body) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (type, id) DO UPDATE SET version = excluded.version, updated = excluded.updated, deleted = excluded.deleted, hash = excluded.hash, body = excluded.body`,
		r.Type, id, version, now.UnixMicro(), false, hash[:], []byte(final.Raw)); err != nil {
		return nil, fmt.Errorf("store %s: %w", r.Type, err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO fhir_history (type, id, version, updated, deleted, body) VALUES (?, ?, ?, ?, ?, ?)",
		r.Type, id, version, now.UnixMicro(), false, []byte(final.Raw)); err != nil {
		return nil, fmt.Errorf("store %s history: %w", r.Type, err)
	}
	if exists {
		if err := dropIndex(ctx, tx, r.Type, id); err != nil {
			return nil, err
		}
	}
	if err := writeIndex(ctx, tx, r.Type, id, ix); err != nil {
		return nil, err
	}
	status := http.StatusOK
	if !exists {
		status = http.StatusCreated
	}
	return &Written{Resource: final, Status: status, Changed: true, Patients: ix.Patients}, nil
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

// writeIndex inserts a resource's index rows, many rows per statement.
func writeIndex(ctx context.Context, tx *sqldb.Tx, typ, id string, ix fhir.Index) error {
	var pats, toks, refs, dates [][]any
	for _, p := range ix.Patients {
		pats = append(pats, []any{p, typ, id})
	}
	for _, t := range ix.Tokens {
		toks = append(toks, []any{typ, id, t.Param, t.System, t.Code})
	}
	for _, r := range ix.Refs {
		refs = append(refs, []any{typ, id, r.Param, r.Type, r.ID})
	}
	for _, d := range ix.Dates {
		dates = append(dates, []any{typ, id, d.Param, d.Lo, d.Hi})
	}
	for _, ins := range []struct {
		head string
		rows [][]any
	}{
		{"INSERT INTO fhir_compartment (patient, type, id) VALUES ", pats},
		{"INSERT INTO fhir_token (type, id, param, system, code) VALUES ", toks},
		{"INSERT INTO fhir_ref (type, id, param, target_type, target_id) VALUES ", refs},
		{"INSERT INTO fhir_date (type, id, param, lo, hi) VALUES ", dates},
	} {
		if err := insertRows(ctx, tx, ins.head, ins.rows); err != nil {
			return err
		}
	}
	return nil
}

func insertRows(ctx context.Context, tx *sqldb.Tx, head string, rows [][]any) error {
	const perStmt = 150
	for start := 0; start < len(rows); start += perStmt {
		part := rows[start:min(start+perStmt, len(rows))]
		var q strings.Builder
		q.WriteString(head)
		args := make([]any, 0, len(part)*len(part[0]))
		for i, row := range part {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(")
			q.WriteString(strings.Repeat("?, ", len(row)-1))
			q.WriteString("?)")
			args = append(args, row...)
		}
		if _, err := tx.Exec(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("index: %w", err)
		}
	}
	return nil
}
