package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"carefront/internal/audit"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

func count(t *testing.T, db *sqldb.DB, table string) int {
	t.Helper()
	var n int
	if err := db.Read(context.Background(), func(tx *sqldb.Tx) error {
		return tx.QueryRow(context.Background(), "SELECT COUNT(*) FROM "+table).Scan(&n)
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// A record staged in a change's transaction commits with it, and is chained
// after the commit; one staged in a transaction that rolls back is gone
// with it.
func TestStagedRecordsCommitWithTheirChange(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		w, s := newWriter(t, db, 1000)
		appendN(t, w, 2)
		err := db.Write(ctx, func(tx *sqldb.Tx) error {
			if err := w.Stage(ctx, tx, read(3)); err != nil {
				return err
			}
			return w.Stage(ctx, tx, read(4))
		})
		if err != nil {
			t.Fatal(err)
		}
		boom := errors.New("the change failed")
		err = db.Write(ctx, func(tx *sqldb.Tx) error {
			if err := w.Stage(ctx, tx, read(5)); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Write = %v, want the change's error", err)
		}
		// Bad input is refused before anything is staged.
		err = db.Write(ctx, func(tx *sqldb.Tx) error {
			bad := read(6)
			bad.Reason = "free text with spaces"
			return w.Stage(ctx, tx, bad)
		})
		if err == nil {
			t.Fatal("Stage of a record with free text = nil error")
		}
		if n := count(t, db, "audit_staged"); n != 2 {
			t.Fatalf("staged = %d, want 2 (the rolled-back and the invalid ones are gone)", n)
		}
		if err := w.Chain(ctx); err != nil {
			t.Fatal(err)
		}
		if n := count(t, db, "audit_staged"); n != 0 {
			t.Errorf("staged after Chain = %d, want 0", n)
		}
		w.Close(ctx)
		rep, err := audit.Verify(ctx, db, s.Trust())
		if err != nil || rep.Records != 4 {
			t.Fatalf("Verify = %+v, %v; want 4 records", rep, err)
		}
		for seq, want := range map[int]string{3: "Observation/o3", 4: "Observation/o4"} {
			if ev := eventOf(t, db, seq); !strings.Contains(ev, want) {
				t.Errorf("record %d = %s, want %s", seq, ev, want)
			}
		}
	})
}

// Records a crash left staged (committed with their change, never chained)
// are chained when the next writer starts.
func TestStagedRecordsLeftByACrashAreChainedAtStart(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		w, s := newWriter(t, db, 1000)
		appendN(t, w, 1)
		if err := db.Write(ctx, func(tx *sqldb.Tx) error { return w.Stage(ctx, tx, read(2)) }); err != nil {
			t.Fatal(err)
		}
		// The process dies here: Chain is never called.
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if n := count(t, db, "audit_staged"); n != 1 {
			t.Fatalf("staged = %d, want 1", n)
		}
		w2, _ := newWriter(t, db, 1000)
		if err := w2.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if n := count(t, db, "audit_staged"); n != 0 {
			t.Errorf("staged after a restart = %d, want 0", n)
		}
		rep, err := audit.Verify(ctx, db, s.Trust())
		if err != nil || rep.Records != 2 {
			t.Fatalf("Verify = %+v, %v; want 2 records", rep, err)
		}
		if ev := eventOf(t, db, 2); !strings.Contains(ev, "Observation/o2") {
			t.Errorf("record 2 = %s", ev)
		}
	})
}
