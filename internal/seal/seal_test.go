package seal_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"carefront/internal/seal"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

func TestSealBindsCiphertextToItsPlace(t *testing.T) {
	k, err := seal.Generate()
	if err != nil {
		t.Fatal(err)
	}
	at := seal.Binding{Table: "totp", Column: "seed", Row: "acct-1"}
	ct, err := k.Seal([]byte("JBSWY3DPEHPK3PXP"), at)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, []byte("JBSWY3DP")) {
		t.Fatal("ciphertext contains the plaintext")
	}
	got, err := k.Open(ct, at)
	if err != nil || string(got) != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("Open = %q, %v; want the seed", got, err)
	}
	for _, other := range []seal.Binding{
		{Table: "totp", Column: "seed", Row: "acct-2"},
		{Table: "totp", Column: "label", Row: "acct-1"},
		{Table: "client", Column: "seed", Row: "acct-1"},
		// Length-prefixing keeps "ab"+"c" apart from "a"+"bc".
		{Table: "tot", Column: "pseed", Row: "acct-1"},
	} {
		if _, err := k.Open(ct, other); !errors.Is(err, seal.ErrOpen) {
			t.Errorf("Open at %+v = %v, want ErrOpen", other, err)
		}
	}
	flipped := bytes.Clone(ct)
	flipped[len(flipped)-1] ^= 1
	if _, err := k.Open(flipped, at); !errors.Is(err, seal.ErrOpen) {
		t.Errorf("Open of tampered ciphertext = %v, want ErrOpen", err)
	}
	if _, err := k.Seal([]byte("x"), seal.Binding{Table: "t", Column: "c"}); err == nil {
		t.Error("Seal without a row = nil error, want one")
	}
}

func TestLoadOrCreateKeepsKeysetAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), seal.KeysetFile)
	k1, err := seal.LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keyset file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	at := seal.Binding{Table: "t", Column: "c", Row: "1"}
	ct, _ := k1.Seal([]byte("secret"), at)
	k2, err := seal.LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := k2.Open(ct, at); err != nil || string(p) != "secret" {
		t.Errorf("Open after reload = %q, %v", p, err)
	}
	if err := os.WriteFile(path, []byte("{not a keyset"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := seal.LoadOrCreate(path); err == nil {
		t.Error("LoadOrCreate of a corrupt keyset = nil error, want one")
	}
}

func TestRotateThenReencrypt(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		blob := "BLOB"
		if db.Dialect == sqldb.Postgres {
			blob = "BYTEA"
		}
		if _, err := db.RawWriter().Exec("CREATE TABLE sealtest (id TEXT PRIMARY KEY, secret " + blob + ")"); err != nil {
			t.Fatal(err)
		}
		k, _ := seal.Generate()
		col := seal.Column{Table: "sealtest", IDColumn: "id", Column: "secret"}
		want := map[string]string{}
		err := db.Write(ctx, func(tx *sqldb.Tx) error {
			for i := range 1203 {
				id := fmt.Sprintf("row-%04d", i)
				want[id] = "secret " + id
				ct, err := k.Seal([]byte(want[id]), seal.Binding{Table: "sealtest", Column: "secret", Row: id})
				if err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, "INSERT INTO sealtest (id, secret) VALUES (?, ?)", id, ct); err != nil {
					return err
				}
			}
			_, err := tx.Exec(ctx, "INSERT INTO sealtest (id, secret) VALUES ('empty', NULL)")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		oldID := k.PrimaryKeyID()
		newID, err := k.Rotate()
		if err != nil || newID == oldID || k.KeyCount() != 2 {
			t.Fatalf("Rotate = %d, %v (keys %d); want a new primary and 2 keys", newID, err, k.KeyCount())
		}
		n, err := seal.Reencrypt(ctx, db, k, col, 500)
		if err != nil || n != 1203 {
			t.Fatalf("Reencrypt = %d, %v; want 1203 moved", n, err)
		}
		if n, err := seal.Reencrypt(ctx, db, k, col, 500); err != nil || n != 0 {
			t.Errorf("second Reencrypt = %d, %v; want 0", n, err)
		}
		rows, err := db.RawWriter().Query("SELECT id, secret FROM sealtest WHERE secret IS NOT NULL")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		seen := 0
		for rows.Next() {
			var id string
			var ct []byte
			rows.Scan(&id, &ct)
			if k.Stale(ct) {
				t.Fatalf("row %s still sealed with the old key", id)
			}
			p, err := k.Open(ct, seal.Binding{Table: "sealtest", Column: "secret", Row: id})
			if err != nil || string(p) != want[id] {
				t.Fatalf("row %s = %q, %v; want %q", id, p, err, want[id])
			}
			seen++
		}
		if seen != 1203 {
			t.Errorf("saw %d rows, want 1203", seen)
		}
	})
}

func TestReencryptRefusesNonIdentifiers(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	k, _ := seal.Generate()
	_, err := seal.Reencrypt(context.Background(), db, k, seal.Column{Table: "t; DROP TABLE x", IDColumn: "id", Column: "c"}, 10)
	if err == nil {
		t.Fatal("Reencrypt with an injected table name = nil error")
	}
}
