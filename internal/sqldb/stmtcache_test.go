package sqldb_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// TestCachedStatementsUnderLoad: many readers at once, in transactions and
// outside, with statements cached and not, get the right rows and never
// wait for ever on the reader pool (a transaction holding a connection
// must never need another to prepare a statement).
func TestCachedStatementsUnderLoad(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		if err := db.Write(ctx, func(tx *sqldb.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO access_version (patient_id, version) VALUES ('a', 1), ('b', 2), ('c', 3)")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for i := range 64 {
				wg.Go(func() {
					// Distinct texts for some, so the cache fills and falls back.
					q := fmt.Sprintf("SELECT version FROM access_version WHERE patient_id = ? AND %d = %d", i%7, i%7)
					want := map[string]int64{"a": 1, "b": 2, "c": 3}
					for j := range 20 {
						p := string(rune('a' + (i+j)%3))
						var got int64
						var err error
						if j%2 == 0 {
							err = db.Read(ctx, func(tx *sqldb.Tx) error {
								if err := tx.QueryRow(ctx, q, p).Scan(&got); err != nil {
									return err
								}
								rows, err := tx.Query(ctx, q, p) // a second statement in the same transaction
								if err != nil {
									return err
								}
								return rows.Close()
							})
						} else {
							err = db.ReadOne(ctx, func(tx *sqldb.Tx) error { return tx.QueryRow(ctx, q, p).Scan(&got) })
						}
						if err == nil && got != want[p] {
							err = fmt.Errorf("%s: got %d, want %d", p, got, want[p])
						}
						if err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			done <- <-errs
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("readers stuck: the reader pool deadlocked")
		}
	})
}

// TestStatementsOfTransactionsAreCachedAfterThem: on SQLite a statement a
// transaction runs (a read transaction's query, a write transaction's
// insert) is prepared once the transaction is over, and the next
// transaction uses it; texts whose length follows the caller's values (IN
// lists, several rows of VALUES) are not kept.
func TestStatementsOfTransactionsAreCachedAfterThem(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		const (
			insert = "INSERT INTO access_version (patient_id, version) VALUES (?, ?)"
			rows   = "INSERT INTO access_version (patient_id, version) VALUES (?, ?), (?, ?)"
			query  = "SELECT version FROM access_version WHERE patient_id = ?"
			in     = "SELECT version FROM access_version WHERE patient_id IN (?, ?)"
		)
		for i := range 2 {
			if err := db.Write(ctx, func(tx *sqldb.Tx) error {
				if _, err := tx.Exec(ctx, insert, fmt.Sprintf("a%d", i), 1); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, rows, fmt.Sprintf("b%d", i), 1, fmt.Sprintf("c%d", i), 2)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			var v, n int64
			if err := db.Read(ctx, func(tx *sqldb.Tx) error {
				if err := tx.QueryRow(ctx, query, fmt.Sprintf("c%d", i)).Scan(&v); err != nil {
					return err
				}
				return tx.QueryRow(ctx, "SELECT COUNT(*) FROM ("+in+") AS x", "a0", "b0").Scan(&n)
			}); err != nil {
				t.Fatal(err)
			}
			if v != 2 || n != 2 {
				t.Fatalf("round %d: read %d and %d, want 2 and 2", i, v, n)
			}
		}
		if db.Dialect != sqldb.SQLite {
			return
		}
		for _, c := range []struct {
			q           string
			write, want bool
		}{{insert, true, true}, {rows, true, false}, {query, false, true}, {"SELECT COUNT(*) FROM (" + in + ") AS x", false, false}} {
			if got := db.CachedForTest(c.q, c.write); got != c.want {
				t.Errorf("cached %q = %v, want %v", c.q, got, c.want)
			}
		}
	})
}
