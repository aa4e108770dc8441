package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
)

// cursor is the position after the last match of a page: its sort key and
// id. It only moves within the query's own results, so a forged one can
// show nothing the query would not.
type cursor struct {
	Key int64  `json:"k,omitempty"`
	ID  string `json:"i"`
}

func encodeCursor(c cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, error) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || !fhir.ValidID(c.ID) {
		return c, apperr.New(apperr.Invalid, "_cursor is not a paging position this server made; start the search again")
	}
	return c, nil
}

// where accumulates SQL conditions and their arguments.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) sql() string { return strings.Join(w.conds, " AND ") }

// Search runs q. Results are ordered by q's sort key and then by id, so
// pages never overlap or skip while the data stands still; the next page
// starts after the last match, so inserts do not shift pages either.
func (s *Store) Search(ctx context.Context, q *fhir.Query) (*fhir.Page, error) {
	var page *fhir.Page
	if q.Total {
		// The count and the page must agree: one transaction.
		err := s.db.Read(ctx, func(tx *sqldb.Tx) error {
			var err error
			if page, err = s.searchTx(ctx, tx, q); err != nil {
				return err
			}
			return s.include(ctx, tx, q, page)
		})
		return page, err
	}
	// One statement each for the matches and what they include, outside
	// a transaction: a single statement sees one consistent snapshot, and
	// the reader's prepared statements are reused. An included resource
	// changed between the two is shown as it is now, as a later read
	// would show it.
	err := s.db.ReadOne(ctx, func(tx *sqldb.Tx) error {
		var err error
		page, err = s.searchTx(ctx, tx, q)
		return err
	})
	if err != nil || len(q.Includes) == 0 {
		return page, err
	}
	err = s.db.ReadOne(ctx, func(tx *sqldb.Tx) error { return s.include(ctx, tx, q, page) })
	return page, err
}

func (s *Store) searchTx(ctx context.Context, tx *sqldb.Tx, q *fhir.Query) (*fhir.Page, error) {
	var w where
	w.add("r.type = ?", q.Type)
	w.add("NOT r.deleted")
	if len(q.IDs) > 0 {
		w.add("r.id IN ("+placeholders(len(q.IDs))+")", anys(q.IDs)...)
	}
	if q.Compartment != "" {
		w.add("r.id IN (SELECT c.id FROM fhir_compartment c WHERE c.patient = ? AND c.type = ?)", q.Compartment, q.Type)
	}
	excludeLabelsSQL(&w, q.Type, q.ExcludeLabels)
	for _, c := range q.Clauses {
		clauseSQL(&w, q.Type, c)
	}
	for _, d := range q.LastUpdated {
		cond, args := dateCond("r.updated", "r.updated + 1", d)
		w.add(cond, args...)
	}

	// The sort key: an expression per row, with missing dates last.
	var keyExpr string
	var keyArgs []any
	switch q.Sort {
	case "", "_id":
		keyExpr = "0"
	case "_lastUpdated":
		keyExpr = "r.updated"
	default:
		missing := fhir.MaxTime
		if q.SortDesc {
			missing = fhir.MinTime
		}
		keyExpr = "COALESCE((SELECT MIN(d.lo) FROM fhir_date d WHERE d.type = r.type AND d.id = r.id AND d.param = ?), " + strconv.FormatInt(missing, 10) + ")"
		keyArgs = []any{q.Sort}
	}
	dir, cmp := "ASC", ">"
	if q.SortDesc {
		dir, cmp = "DESC", "<"
	}

	page := &fhir.Page{}
	err := func() error {
		if q.Total {
			var n int
			if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM fhir_resource r WHERE "+w.sql(), w.args...).Scan(&n); err != nil {
				return fmt.Errorf("search count: %w", err)
			}
			page.Total = &n
		}
		if q.Count == 0 {
			return nil
		}
		pw := where{conds: append([]string{}, w.conds...), args: append([]any{}, w.args...)}
		if q.Cursor != "" {
			c, err := decodeCursor(q.Cursor)
			if err != nil {
				return err
			}
			pw.add("("+keyExpr+" "+cmp+" ? OR ("+keyExpr+" = ? AND r.id "+cmp+" ?))",
				append(append(append(append([]any{}, keyArgs...), c.Key), keyArgs...), c.Key, c.ID)...)
		}
		query := "SELECT r.id, r.version, r.updated, r.body, " + keyExpr + " AS k FROM fhir_resource r WHERE " + pw.sql() +
			" ORDER BY k " + dir + ", r.id " + dir + " LIMIT ?"
		args := append(append(append([]any{}, keyArgs...), pw.args...), q.Count+1)
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("search: %w", err)
		}
		defer rows.Close()
		var last cursor
		for rows.Next() {
			var (
				id               string
				version, updated int64
				body             []byte
				key              int64
			)
			if err := rows.Scan(&id, &version, &updated, &body, &key); err != nil {
				return err
			}
			if len(page.Matches) == q.Count {
				page.Next = encodeCursor(last)
				break
			}
			page.Matches = append(page.Matches, &fhir.Resource{Type: q.Type, ID: id, VersionID: strconv.FormatInt(version, 10),
				LastUpdated: time.UnixMicro(updated).UTC(), Raw: body})
			last = cursor{Key: key, ID: id}
		}
		return rows.Err()
	}()
	if err != nil {
		return nil, err
	}
	return page, nil
}

// include adds the resources the page's matches refer to by q's _include
// parameters.
func (s *Store) include(ctx context.Context, tx *sqldb.Tx, q *fhir.Query, page *fhir.Page) error {
	if len(q.Includes) == 0 || len(page.Matches) == 0 {
		return nil
	}
	ids := make([]any, len(page.Matches))
	seen := map[string]bool{}
	for i, m := range page.Matches {
		ids[i] = m.ID
		seen[m.Ref()] = true
	}
	for _, inc := range q.Includes {
		query := "SELECT DISTINCT f.target_type, f.target_id FROM fhir_ref f WHERE f.type = ? AND f.param = ? AND f.id IN (" + placeholders(len(ids)) + ")"
		args := append([]any{q.Type, inc.Param.Name}, ids...)
		if inc.TargetType != "" {
			query += " AND f.target_type = ?"
			args = append(args, inc.TargetType)
		}
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("include: %w", err)
		}
		var targets [][2]string
		for rows.Next() {
			var t [2]string
			if err := rows.Scan(&t[0], &t[1]); err != nil {
				rows.Close()
				return err
			}
			targets = append(targets, t)
		}
		rows.Close()
		for _, t := range targets {
			if seen[t[0]+"/"+t[1]] {
				continue
			}
			seen[t[0]+"/"+t[1]] = true
			r, err := readCurrent(ctx, tx, t[0], t[1])
			if apperr.CodeOf(err) == apperr.NotFound || apperr.CodeOf(err) == apperr.Gone {
				continue // a dangling reference includes nothing
			}
			if err != nil {
				return err
			}
			page.Included = append(page.Included, r)
		}
	}
	return nil
}

func clauseSQL(w *where, typ string, c fhir.Clause) {
	var ors []string
	var args []any
	switch c.Param.Kind {
	case fhir.Token:
		for _, t := range c.Tokens {
			switch {
			case t.AnySystem:
				ors = append(ors, "t.code = ?")
				args = append(args, t.Code)
			case t.AnyCode:
				ors = append(ors, "t.system = ?")
				args = append(args, t.System)
			default:
				ors = append(ors, "(t.code = ? AND t.system = ?)")
				args = append(args, t.Code, t.System)
			}
		}
		w.add("r.id IN (SELECT t.id FROM fhir_token t WHERE t.type = ? AND t.param = ? AND ("+strings.Join(ors, " OR ")+"))",
			append([]any{typ, c.Param.Name}, args...)...)
	case fhir.Reference:
		for _, r := range c.Refs {
			if r.Type == "" {
				ors = append(ors, "f.target_id = ?")
				args = append(args, r.ID)
			} else {
				ors = append(ors, "(f.target_id = ? AND f.target_type = ?)")
				args = append(args, r.ID, r.Type)
			}
		}
		w.add("r.id IN (SELECT f.id FROM fhir_ref f WHERE f.type = ? AND f.param = ? AND ("+strings.Join(ors, " OR ")+"))",
			append([]any{typ, c.Param.Name}, args...)...)
	case fhir.Date:
		for _, d := range c.Dates {
			cond, a := dateCond("d.lo", "d.hi", d)
			ors = append(ors, cond)
			args = append(args, a...)
		}
		w.add("r.id IN (SELECT d.id FROM fhir_date d WHERE d.type = ? AND d.param = ? AND ("+strings.Join(ors, " OR ")+"))",
			append([]any{typ, c.Param.Name}, args...)...)
	}
}

// dateCond is fhir.DateCond.Matches in SQL over a [lo, hi) range.
func dateCond(lo, hi string, d fhir.DateCond) (string, []any) {
	eq := "(" + lo + " >= ? AND " + hi + " <= ?)"
	switch d.Prefix {
	case "gt":
		return hi + " > ?", []any{d.Hi}
	case "lt":
		return lo + " < ?", []any{d.Lo}
	case "ge":
		return "(" + eq + " OR " + hi + " > ?)", []any{d.Lo, d.Hi, d.Hi}
	case "le":
		return "(" + eq + " OR " + lo + " < ?)", []any{d.Lo, d.Hi, d.Lo}
	default:
		return eq, []any{d.Lo, d.Hi}
	}
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// SearchIn runs q inside tx: for readers that must see the store as of
// their own transaction (the access policy, read after its version).
func (s *Store) SearchIn(ctx context.Context, tx *sqldb.Tx, q *fhir.Query) (*fhir.Page, error) {
	return s.searchTx(ctx, tx, q)
}
