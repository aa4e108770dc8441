package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"carefront/internal/fhir"
	"carefront/internal/sqldb"
)

// Labeler gives the sensitivity labels carefront derives for a resource
// (from its codes and its source: consent.Labeler), which the store
// indexes as _security beside the labels the resource carries, so that a
// search can leave out what its reader may not see before it runs
// (fhir.Query.ExcludeLabels). Fingerprint names the labelling (the
// table's version and anything else the labels depend on): when it
// changes, Relabel brings the index rows of every resource in line.
type Labeler interface {
	Labels(typ string, tree map[string]any) []string
	Fingerprint() string
}

const securityParam = "_security"

// relabelBatch is how many resources one relabelling transaction covers.
var relabelBatch = 500

// relabelLockID is the PostgreSQL advisory lock that serializes
// relabelling batches between processes ("carefront-relabel").
const relabelLockID = 0x63665f72656c6162

// addLabels appends the labeler's labels of a resource to its index as
// _security tokens, skipping those it carries already.
func (s *Store) addLabels(ix *fhir.Index, typ string, tree map[string]any) {
	if s.Labels == nil {
		return
	}
	for _, l := range s.Labels.Labels(typ, tree) {
		sys, code, ok := strings.Cut(l, "|")
		if !ok {
			continue
		}
		e := fhir.TokenEntry{Param: securityParam, TokenValue: fhir.TokenValue{System: sys, Code: code}}
		dup := false
		for _, t := range ix.Tokens {
			if t == e {
				dup = true
				break
			}
		}
		if !dup {
			ix.Tokens = append(ix.Tokens, e)
		}
	}
}

// LabelState is what the index's derived labels follow.
type LabelState struct {
	// Fingerprint is the labelling the rows were last computed with
	// everywhere ("" when never).
	Fingerprint string
	// Current says it is the store's Labeler's.
	Current bool
}

// LabelIndex reports which labelling the index follows.
func (s *Store) LabelIndex(ctx context.Context) (LabelState, error) {
	var st LabelState
	err := s.db.Read(ctx, func(tx *sqldb.Tx) error {
		var err error
		st.Fingerprint, err = labelFingerprint(ctx, tx)
		return err
	})
	st.Current = s.Labels != nil && st.Fingerprint == s.Labels.Fingerprint()
	return st, err
}

func labelFingerprint(ctx context.Context, tx *sqldb.Tx) (string, error) {
	var fp string
	err := tx.QueryRow(ctx, "SELECT fingerprint FROM fhir_label_index WHERE id = 1").Scan(&fp)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return fp, err
}

// Relabel computes the _security index rows of every current resource
// again with the store's Labeler, when the index follows another
// labelling (a new labels table, other Part 2 sources), and records the
// new fingerprint. It writes no resource version. It goes in batches,
// each its own transaction, so writes go on meanwhile (a resource written
// during it is indexed with the new labels by its write); several
// processes may run it at once (their batches take turns, and each stops
// when another has finished). It returns how many resources it labelled.
//
// Until it finishes, searches narrowed by labels may still leave out or
// keep what the old labelling said; what they return is decided again,
// one resource at a time, by the gateway, so nothing hidden is shown.
func (s *Store) Relabel(ctx context.Context) (int, error) {
	if s.Labels == nil {
		return 0, nil
	}
	want := s.Labels.Fingerprint()
	var after struct{ typ, id string }
	total := 0
	wait := 20 * time.Millisecond
	for {
		done, busy := false, false
		err := s.db.Write(ctx, func(tx *sqldb.Tx) error {
			if tx.Dialect() == sqldb.Postgres {
				// Try, never queue: a waiting exclusive lock would hold
				// back every write that comes after it.
				var got bool
				if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock(?)", int64(relabelLockID)).Scan(&got); err != nil {
					return err
				}
				if !got {
					busy = true
					return nil
				}
			}
			fp, err := labelFingerprint(ctx, tx)
			if err != nil {
				return err
			}
			if fp == want {
				done = true // already, or another process finished meanwhile
				return nil
			}
			n, last, err := s.relabelBatch(ctx, tx, after.typ, after.id)
			if err != nil {
				return err
			}
			total += n
			if n < relabelBatch {
				done = true
				now := s.now().UnixMicro()
				_, err = tx.Exec(ctx, "INSERT INTO fhir_label_index (id, fingerprint, resources, updated) VALUES (1, ?, ?, ?)"+
					" ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint, resources = excluded.resources, updated = excluded.updated",
					want, int64(total), now)
				return err
			}
			after.typ, after.id = last.typ, last.id
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("relabel: %w", err)
		}
		if done {
			return total, nil
		}
		if busy { // writes under way: try again a little later
			select {
			case <-ctx.Done():
				return total, ctx.Err()
			case <-time.After(wait):
			}
			wait = min(2*wait, 2*time.Second)
			continue
		}
		wait = 20 * time.Millisecond
	}
}

// writeLock is taken by every transaction that writes resources before
// it writes the first: on PostgreSQL, the relabelling lock shared, so
// writes go on together and a relabelling batch (which only tries for it
// alone, and waits outside the queue when writes hold it) never
// interleaves with one. Both take it before any row lock, so they cannot
// deadlock. On SQLite a write transaction is exclusive already.
func writeLock(ctx context.Context, tx *sqldb.Tx) error {
	if tx.Dialect() != sqldb.Postgres {
		return nil
	}
	_, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock_shared(?)", int64(relabelLockID))
	return err
}

// relabelBatch relabels the next batch of current resources after
// (typ, id) in (type, id) order. The caller holds the relabelling lock
// alone, so no write of these resources is under way.
func (s *Store) relabelBatch(ctx context.Context, tx *sqldb.Tx, typ, id string) (int, key, error) {
	rows, err := tx.Query(ctx, "SELECT type, id, body FROM fhir_resource WHERE NOT deleted AND (type > ? OR (type = ? AND id > ?)) ORDER BY type, id LIMIT ?",
		typ, typ, id, relabelBatch)
	if err != nil {
		return 0, key{}, err
	}
	type item struct {
		k    key
		body []byte
	}
	var items []item
	for rows.Next() {
		var it item
		if err := rows.Scan(&it.k.typ, &it.k.id, &it.body); err != nil {
			rows.Close()
			return 0, key{}, err
		}
		items = append(items, it)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, key{}, err
	}
	byType := map[string][]any{}
	var toks [][]any
	for _, it := range items {
		byType[it.k.typ] = append(byType[it.k.typ], it.k.id)
		tree, err := fhir.Decode(it.body)
		if err != nil {
			return 0, key{}, fmt.Errorf("%s/%s: %w", it.k.typ, it.k.id, err)
		}
		var ix fhir.Index
		for _, t := range fhir.Extract(it.k.typ, it.k.id, tree).Tokens {
			if t.Param == securityParam {
				ix.Tokens = append(ix.Tokens, t)
			}
		}
		s.addLabels(&ix, it.k.typ, tree)
		for _, t := range ix.Tokens {
			toks = append(toks, []any{it.k.typ, it.k.id, t.Param, t.System, t.Code})
		}
	}
	for typ, ids := range byType {
		if _, err := tx.Exec(ctx, "DELETE FROM fhir_token WHERE type = ? AND param = ? AND id IN ("+placeholders(len(ids))+")",
			append([]any{typ, securityParam}, ids...)...); err != nil {
			return 0, key{}, err
		}
	}
	if err := insertRows(ctx, tx, "INSERT INTO fhir_token (type, id, param, system, code) VALUES ", "", toks); err != nil {
		return 0, key{}, err
	}
	if len(items) == 0 {
		return 0, key{}, nil
	}
	return len(items), items[len(items)-1].k, nil
}

// excludeLabelsSQL leaves out resources indexed with any of labels
// ("system|code").
func excludeLabelsSQL(w *where, typ string, labels []string) {
	var ors []string
	var args []any
	for _, l := range labels {
		sys, code, _ := strings.Cut(l, "|")
		ors = append(ors, "(t.code = ? AND t.system = ?)")
		args = append(args, code, sys)
	}
	if len(ors) == 0 {
		return
	}
	w.add("r.id NOT IN (SELECT t.id FROM fhir_token t WHERE t.type = ? AND t.param = ? AND ("+strings.Join(ors, " OR ")+"))",
		append([]any{typ, securityParam}, args...)...)
}
