package messaging_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/audit/audittest"
	"carefront/internal/messaging"
	"carefront/internal/seal"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// newStore opens a messaging store with an audit writer and sealing keys,
// and the accounts every test uses: Maria (a patient), two clinicians,
// support staff and a security officer.
func newStore(t *testing.T, db *sqldb.DB) *messaging.Store {
	t.Helper()
	ctx := context.Background()
	sig, _ := audit.NewSigner(make([]byte, 32))
	aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test", CheckpointEvery: 100})
	t.Cleanup(func() { aw.Close(ctx) })
	keys, err := seal.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Write(ctx, func(tx *sqldb.Tx) error {
		for _, a := range []struct{ id, kind, email, role, patient string }{
			{"acct-maria", "person", "maria@example.com", "", "maria"},
			{"acct-dana", "person", "dana@example.com", "", ""},
			{"acct-sam", "person", "sam@example.com", "", "sam"},
			{"acct-rivera", "staff", "rivera@clinic.example", "clinician", ""},
			{"acct-okafor", "staff", "okafor@clinic.example", "clinician", ""},
			{"acct-billing", "staff", "billing@clinic.example", "support", ""},
			{"acct-security", "staff", "security@clinic.example", "security-officer", ""},
		} {
			if _, err := tx.Exec(ctx, "INSERT INTO account (id, kind, email, staff_role, patient_id, created) VALUES (?, ?, ?, ?, ?, 0)",
				a.id, a.kind, a.email, nullable(a.role), nullable(a.patient)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return &messaging.Store{DB: db, Keys: keys, Audit: aw}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func TestParseResponseTime(t *testing.T) {
	for in, want := range map[string]time.Duration{"2d": 48 * time.Hour, "36h": 36 * time.Hour, "90m": 90 * time.Minute, " 14d ": 14 * 24 * time.Hour} {
		if got, err := messaging.ParseResponseTime(in); err != nil || got != want {
			t.Errorf("ParseResponseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "2", "d", "2w", "-1d", "0h", "59m", "15d", "1.5d", "2 d", "2D"} {
		if _, err := messaging.ParseResponseTime(in); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("ParseResponseTime(%q) = %v, want Invalid", in, err)
		}
	}
}

// TestPools: the clinic adds pools and the staff who answer them; bad
// names, times, ids and accounts are refused with nothing changed; each
// change is in the audit trail; a patient is offered the general pools and
// those of clinicians who care for them, only when someone answers.
func TestPools(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := newStore(t, db)
		rivera, err := s.AddPool(ctx, messaging.NewPool{Name: "Dr. Rivera's team", ResponseTime: 48 * time.Hour, Practitioner: "Practitioner/rivera"})
		if err != nil {
			t.Fatal(err)
		}
		billing, err := s.AddPool(ctx, messaging.NewPool{Name: "Billing", ResponseTime: 72 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		okafor, err := s.AddPool(ctx, messaging.NewPool{Name: "Dr. Okafor's team", ResponseTime: 24 * time.Hour, Practitioner: "okafor"})
		if err != nil {
			t.Fatal(err)
		}
		records := audittest.Count(t, db)
		for _, bad := range []struct {
			n    messaging.NewPool
			code apperr.Code
		}{
			{messaging.NewPool{Name: "billing", ResponseTime: 48 * time.Hour}, apperr.Conflict},
			{messaging.NewPool{Name: "  ", ResponseTime: 48 * time.Hour}, apperr.Invalid},
			{messaging.NewPool{Name: strings.Repeat("x", 81), ResponseTime: 48 * time.Hour}, apperr.Invalid},
			{messaging.NewPool{Name: "Tab\tbed", ResponseTime: 48 * time.Hour}, apperr.Invalid},
			{messaging.NewPool{Name: "Quick", ResponseTime: 30 * time.Minute}, apperr.Invalid},
			{messaging.NewPool{Name: "Slow", ResponseTime: 15 * 24 * time.Hour}, apperr.Invalid},
			{messaging.NewPool{Name: "Bad id", ResponseTime: 48 * time.Hour, Practitioner: "Practitioner/not valid!"}, apperr.Invalid},
		} {
			if _, err := s.AddPool(ctx, bad.n); apperr.CodeOf(err) != bad.code {
				t.Errorf("AddPool(%+v) = %v, want %s", bad.n, err, bad.code)
			}
		}
		for _, bad := range []struct{ pool, email string }{
			{"No such pool", "rivera@clinic.example"},
			{billing.ID, "nobody@clinic.example"},
			{billing.ID, "maria@example.com"},
			{billing.ID, "security@clinic.example"},
		} {
			if err := s.AddMember(ctx, bad.pool, bad.email, ""); apperr.CodeOf(err) != apperr.Invalid {
				t.Errorf("AddMember(%s, %s) = %v, want Invalid", bad.pool, bad.email, err)
			}
		}
		if n := audittest.Count(t, db); n != records {
			t.Errorf("refused changes wrote %d audit records", n-records)
		}
		for _, m := range []struct{ pool, email string }{
			{"dr. rivera's team", "Rivera@Clinic.example"}, {rivera.ID, "rivera@clinic.example"}, {"Billing", "billing@clinic.example"},
		} {
			if err := s.AddMember(ctx, m.pool, m.email, "Person/acct-admin"); err != nil {
				t.Fatalf("AddMember(%s, %s): %v", m.pool, m.email, err)
			}
		}
		all, err := s.Pools(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range all {
			got = append(got, p.Name+"/"+p.ResponseTime.String()+"/"+string(rune('0'+p.Members)))
		}
		if want := "Billing/72h0m0s/1 Dr. Okafor's team/24h0m0s/0 Dr. Rivera's team/48h0m0s/1"; strings.Join(got, " ") != want {
			t.Errorf("pools = %v, want %s", got, want)
		}
		if ids, _ := s.MemberOf(ctx, "acct-rivera"); len(ids) != 1 || ids[0] != rivera.ID {
			t.Errorf("Rivera answers %v, want his team's pool only", ids)
		}
		// Okafor's pool has no one answering: it is offered to no one.
		caresFor := func(_ context.Context, practitioner, patient string) (bool, error) {
			return patient == "maria" && (practitioner == "Practitioner/rivera" || practitioner == "Practitioner/okafor"), nil
		}
		for patient, want := range map[string]string{"maria": "Billing, Dr. Rivera's team", "sam": "Billing"} {
			ps, err := s.PoolsFor(ctx, patient, caresFor)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range ps {
				names = append(names, p.Name)
			}
			if strings.Join(names, ", ") != want {
				t.Errorf("%s is offered %v, want %s", patient, names, want)
			}
		}
		_ = okafor
		// Three pools and two members added: five records of pool changes.
		n := 0
		for _, e := range audittest.Events(t, db) {
			if strings.Contains(e, `"message-pool"`) {
				n++
			}
		}
		if n != 5 {
			t.Errorf("%d audit records of pool changes, want 5", n)
		}
	})
}
