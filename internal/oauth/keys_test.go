package oauth_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"carefront/internal/oauth"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// TestSigningKeys: the first key is made when needed and shared by every
// instance; a rotation signs with the new key at once and keeps the old
// one published for a day; the JWKS carries public keys only; the
// private key is sealed at rest and bound to its row.
func TestSigningKeys(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		clock := sqldbtest.UseClock(db)
		sk, err := seal.Generate()
		if err != nil {
			t.Fatal(err)
		}
		a := &oauth.Keys{DB: db, Seal: sk}
		first, err := a.Current(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b := &oauth.Keys{DB: db, Seal: sk} // another instance
		if k, err := b.Current(ctx); err != nil || k.ID != first.ID || !k.Private.Equal(first.Private) {
			t.Fatalf("another instance signs with %v, %v; want %s", k, err, first.ID)
		}
		id, err := a.Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Published at once, signing only once every instance lists it.
		if k, _ := a.Current(ctx); k.ID != first.ID {
			t.Errorf("right after a rotation the instance signs with %s, want the old %s", k.ID, first.ID)
		}
		pub, err := a.Published(ctx)
		if err != nil || len(pub) != 2 {
			t.Fatalf("published %d keys, %v; want the new and the old", len(pub), err)
		}
		for _, k := range pub {
			j, _ := json.Marshal(k.Public())
			if strings.Contains(string(j), `"d"`) || strings.Contains(string(j), `"p"`) || !strings.Contains(string(j), `"alg":"RS256"`) {
				t.Errorf("published key %s: %s", k.ID, j)
			}
		}
		clock.Add(3 * time.Minute)
		b2 := &oauth.Keys{DB: db, Seal: sk}
		if k, _ := b2.Current(ctx); k.ID != id {
			t.Errorf("three minutes after a rotation an instance signs with %s, want %s", k.ID, id)
		}
		if pub, _ := b2.Published(ctx); len(pub) != 2 {
			t.Errorf("the replaced key is no longer published (%d keys)", len(pub))
		}
		clock.Add(oauth.KeyPublishedFor)
		fresh := &oauth.Keys{DB: db, Seal: sk}
		if pub, _ := fresh.Published(ctx); len(pub) != 1 || pub[0].ID != id {
			t.Errorf("a day after the rotation %d keys are published, want the new one only", len(pub))
		}
		// Sealed at rest: the column does not hold the key, and another
		// keyset cannot open it.
		var sealed []byte
		if err := db.Read(ctx, func(tx *sqldb.Tx) error {
			return tx.QueryRow(ctx, "SELECT private_sealed FROM oauth_signing_key WHERE id = ?", id).Scan(&sealed)
		}); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(sealed), "PRIVATE") || len(sealed) < 1000 {
			t.Errorf("the stored key looks unsealed (%d bytes)", len(sealed))
		}
		other, _ := seal.Generate()
		if _, err := (&oauth.Keys{DB: db, Seal: other}).Current(ctx); err == nil {
			t.Error("another keyset opened the signing key")
		}
	})
}
