package consent

import (
	"context"
	"strings"
	"testing"
	"time"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/audit/audittest"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

func TestGrantsStore(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		clock := sqldbtest.UseClock(db)
		sig, _ := audit.NewSigner(make([]byte, 32))
		aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test", CheckpointEvery: 100})
		t.Cleanup(func() { aw.Close(ctx) })
		if err := db.Write(ctx, func(tx *sqldb.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO account (id, kind, email, created) VALUES ('acct-dana', 'person', 'dana@example.com', 0)")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		gs := &Grants{DB: db, Audit: aw}
		pol := &access.Store{DB: db}
		v0, _ := pol.Version(ctx, "sam")
		birth := time.Date(2011, 8, 18, 0, 0, 0, 0, time.UTC)
		g, err := gs.Grant(ctx, NewGrant{Patient: "sam", Email: "Dana@Example.com", Preset: "full", Until: clock.Now().AddDate(1, 0, 0), PatientBirth: birth, By: "Person/acct-walter"})
		if err != nil {
			t.Fatal(err)
		}
		if g.Account != "acct-dana" || g.Email != "dana@example.com" {
			t.Errorf("grant not linked to the account holding the address: %+v", g)
		}
		if v1, _ := pol.Version(ctx, "sam"); v1 <= v0 {
			t.Errorf("access version %d -> %d", v0, v1)
		}
		held, err := gs.ForCaregiver(ctx, "acct-dana")
		if err != nil || len(held) != 1 || !held[0].Active(clock.Now()) || !held[0].PatientBirth.Equal(birth) {
			t.Fatalf("ForCaregiver: %+v %v", held, err)
		}
		if p := held[0].Proxy(); p.GrantID != g.ID || len(p.Kinds) != 0 || !p.Until.Equal(g.Until) {
			t.Errorf("Proxy() = %+v", p)
		}
		if _, _, ev := audittest.Last(t, db); ev == "" {
			t.Error("no audit record")
		}
		before := audittest.Count(t, db)
		for _, bad := range []NewGrant{
			{Patient: "sam", Email: "dana", Preset: "full", Until: clock.Now().AddDate(1, 0, 0)},
			{Patient: "sam", Email: "dana@example.com", Preset: "all", Until: clock.Now().AddDate(1, 0, 0)},
			{Patient: "sam", Email: "dana@example.com", Preset: "full", Until: clock.Now()},
			{Patient: "sam", Email: "dana@example.com", Preset: "full", Until: clock.Now().AddDate(11, 0, 0)},
		} {
			if _, err := gs.Grant(ctx, bad); apperr.CodeOf(err) != apperr.Invalid {
				t.Errorf("Grant(%+v) = %v, want Invalid", bad, err)
			}
		}
		if n := audittest.Count(t, db); n != before+4 {
			t.Errorf("bad grants wrote %d audit records, want one refusal each", n-before)
		}
		if out, patient, ev := audittest.Last(t, db); out != "4" || patient != "Patient/sam" || !strings.Contains(ev, "proxy-grant-refused") {
			t.Errorf("refusal audited as %s %s %s", out, patient, ev)
		}
		if l, _ := gs.List(ctx, "sam"); len(l) != 1 {
			t.Errorf("bad grants were written: %d grants", len(l))
		}
		if _, err := gs.Revoke(ctx, Revocation{ID: g.ID, By: "Person/acct-walter", Address: "192.0.2.1"}); err != nil {
			t.Fatal(err)
		}
		held, _ = gs.ForCaregiver(ctx, "acct-dana")
		if held[0].Active(clock.Now()) {
			t.Error("a revoked grant is in force")
		}
		if _, err := gs.Revoke(ctx, Revocation{ID: g.ID, By: "Person/acct-walter"}); err != ErrNoGrant {
			t.Errorf("second revoke: %v", err)
		}
	})
}
