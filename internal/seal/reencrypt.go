package seal

import (
	"context"
	"fmt"
	"regexp"

	"carefront/internal/sqldb"
)

// Column names a column of sealed values and the id column whose value is
// the Binding's Row.
type Column struct {
	Table, IDColumn, Column string
}

var identPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Reencrypt moves every value in c sealed with an older key to the primary
// key, batch rows per transaction, and reports how many it moved. A row
// changed meanwhile by someone else is left for the next run (the update
// matches the old ciphertext), so it never overwrites a newer value.
func Reencrypt(ctx context.Context, db *sqldb.DB, k *Keys, c Column, batch int) (int, error) {
	for _, s := range []string{c.Table, c.IDColumn, c.Column} {
		if !identPattern.MatchString(s) {
			return 0, fmt.Errorf("seal: %q is not a plain SQL identifier", s)
		}
	}
	if batch <= 0 {
		batch = 500
	}
	type item struct {
		id any
		ct []byte
	}
	sel := fmt.Sprintf("SELECT %s, %s FROM %s WHERE %s IS NOT NULL AND %s > ? ORDER BY %s LIMIT ?",
		c.IDColumn, c.Column, c.Table, c.Column, c.IDColumn, c.IDColumn)
	first := fmt.Sprintf("SELECT %s, %s FROM %s WHERE %s IS NOT NULL ORDER BY %s LIMIT ?",
		c.IDColumn, c.Column, c.Table, c.Column, c.IDColumn)
	upd := fmt.Sprintf("UPDATE %s SET %s = ? WHERE %s = ? AND %s = ?", c.Table, c.Column, c.IDColumn, c.Column)
	moved := 0
	var last any
	for {
		var page []item
		err := db.Read(ctx, func(tx *sqldb.Tx) error {
			q, args := first, []any{batch}
			if last != nil {
				q, args = sel, []any{last, batch}
			}
			rows, err := tx.Query(ctx, q, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var it item
				if err := rows.Scan(&it.id, &it.ct); err != nil {
					return err
				}
				page = append(page, it)
			}
			return rows.Err()
		})
		if err != nil {
			return moved, fmt.Errorf("seal: reencrypt %s.%s: %w", c.Table, c.Column, err)
		}
		if len(page) == 0 {
			return moved, nil
		}
		last = page[len(page)-1].id
		err = db.Write(ctx, func(tx *sqldb.Tx) error {
			for _, it := range page {
				if !k.Stale(it.ct) {
					continue
				}
				b := Binding{Table: c.Table, Column: c.Column, Row: fmt.Sprint(it.id)}
				p, err := k.Open(it.ct, b)
				if err != nil {
					return fmt.Errorf("row %v: %w", it.id, err)
				}
				ct, err := k.Seal(p, b)
				if err != nil {
					return err
				}
				res, err := tx.Exec(ctx, upd, ct, it.id, it.ct)
				if err != nil {
					return err
				}
				if n, _ := res.RowsAffected(); n == 1 {
					moved++
				}
			}
			return nil
		})
		if err != nil {
			return moved, fmt.Errorf("seal: reencrypt %s.%s: %w", c.Table, c.Column, err)
		}
	}
}
