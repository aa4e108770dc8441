package consent

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"carefront/internal/access"
	"carefront/internal/audit"
	"carefront/internal/audit/audittest"
	"carefront/internal/clinical/importer"
	"carefront/internal/clinical/store"
	"carefront/internal/oauth"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// TestGrantsAreConsentResources: an invitation is a proposed Consent in
// the patient's record; accepting makes it active, names the caregiver's
// RelatedPerson (created with it) and brings its never-share exception
// into the compiled policy, where it keeps the caregiver from those
// records; revoking makes a new, inactive version. Each change is a new
// version of the same Consent, written in the grant's transaction.
func TestGrantsAreConsentResources(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		clock := sqldbtest.UseClock(db)
		sig, _ := audit.NewSigner(make([]byte, 32))
		aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test"})
		t.Cleanup(func() { aw.Close(ctx) })
		if err := db.Write(ctx, func(tx *sqldb.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO account (id, kind, email, created) VALUES ('acct-linda', 'person', 'linda@example.com', 0)")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		st := store.New(db)
		gs := &Grants{DB: db, Audit: aw, Store: st}
		pols := &access.Store{DB: db, Loaders: []access.Loader{gs.LoadPolicy}}
		secret := ""
		gs.Mail = mailFunc(func(link string) { secret = link })
		g, err := gs.Grant(ctx, NewGrant{Patient: "walter", Email: "linda@example.com", Preset: "full", Never: []string{"mental-health", "substance-use"},
			Until: clock.Now().AddDate(1, 0, 0), By: "Person/walter", Invite: true})
		if err != nil {
			t.Fatal(err)
		}
		status := func() (string, string, map[string]any) {
			r, err := st.Read(ctx, "Consent", g.ID)
			if err != nil {
				t.Fatal(err)
			}
			tree, _ := r.Tree()
			return tree["status"].(string), r.VersionID, tree
		}
		if s, v, _ := status(); s != "proposed" || v != "1" {
			t.Errorf("an invitation's Consent is %s version %s, want proposed 1", s, v)
		}
		pol, _ := pols.Policy(ctx, "walter")
		if len(pol.Consents) != 0 || pol.ProxyFor("Person/acct-linda") != nil {
			t.Errorf("a waiting invitation is in force: %+v", pol)
		}
		if _, err := gs.Accept(ctx, secret, "acct-other", "other@example.com", ""); err == nil {
			t.Fatal("an account for another address accepted the invitation")
		}
		if _, _, e := audittest.Last(t, db); !strings.Contains(e, "invitation-other-account") {
			t.Errorf("the refusal is not audited: %s", e)
		}
		if _, err := gs.Accept(ctx, secret, "acct-linda", "linda@example.com", ""); err != nil {
			t.Fatal(err)
		}
		s, v, tree := status()
		if s != "active" || v != "2" {
			t.Errorf("an accepted grant's Consent is %s version %s, want active 2", s, v)
		}
		raw, _ := json.Marshal(tree["provision"])
		if want := `"reference":"` + RelatedPerson(g.ID) + `"`; !json.Valid(raw) || !strings.Contains(string(raw), want) || !strings.Contains(string(raw), `"code":"PSY"`) {
			t.Errorf("provision %s lacks %s or the PSY exception", raw, want)
		}
		if _, err := st.Read(ctx, "RelatedPerson", RelatedPerson(g.ID)[len("RelatedPerson/"):]); err != nil {
			t.Errorf("no RelatedPerson for the caregiver: %v", err)
		}
		pol, _ = pols.Policy(ctx, "walter")
		proxy := pol.ProxyFor("Person/acct-linda")
		if len(pol.Consents) != 1 || proxy == nil || proxy.RelatedPerson != RelatedPerson(g.ID) {
			t.Fatalf("accepted grant not compiled: %d consents, proxy %+v", len(pol.Consents), proxy)
		}
		linda := access.Principal{User: "Person/acct-linda", Patient: "walter", Caregiver: true, Proxy: proxy, Policy: pol, At: clock.Now()}
		audit := access.Target{Type: "Observation", Patients: []string{"walter"}, Labels: []string{"http://terminology.hl7.org/CodeSystem/v3-ActCode|ETH"}}
		if d := access.Decide(ctx, linda, access.Read, audit); d.Permit || d.Reason != access.ReasonConsentDenied || d.Consent != g.ID {
			t.Errorf("a never-shared record: %+v", d)
		}
		if d := access.Decide(ctx, linda, access.Read, access.Target{Type: "Observation", Patients: []string{"walter"}}); !d.Permit {
			t.Errorf("an ordinary record: %+v", d)
		}
		for _, typ := range []string{"Consent", "RelatedPerson"} {
			if d := access.Decide(ctx, linda, access.Search, access.Target{Type: typ}); d.Permit {
				t.Errorf("a caregiver searches the patient's %s: %+v", typ, d)
			}
		}
		clock.Add(time.Minute)
		if _, err := gs.Revoke(ctx, Revocation{ID: g.ID, Patient: "walter", By: "Person/walter"}); err != nil {
			t.Fatal(err)
		}
		if s, v, _ := status(); s != "inactive" || v != "3" {
			t.Errorf("a revoked grant's Consent is %s version %s, want inactive 3", s, v)
		}
		if _, err := gs.Revoke(ctx, Revocation{ID: g.ID, Patient: "walter", By: "Person/walter"}); err != ErrNoGrant {
			t.Errorf("revoking twice: %v", err)
		}
		if _, v, _ := status(); v != "3" {
			t.Errorf("a refused revocation wrote version %s", v)
		}
		if _, err := gs.Grant(ctx, NewGrant{Patient: "walter", Email: "x@example.com", Preset: "full", Never: []string{"politics"},
			Until: clock.Now().AddDate(1, 0, 0), By: "Person/walter"}); err == nil {
			t.Error("a never-share kind that does not exist was accepted")
		}
	})
}

type mailFunc func(link string)

func (f mailFunc) QueueInvitation(_ context.Context, _ *sqldb.Tx, _, link string) error {
	f(link[len(link)-64:])
	return nil
}

func (mailFunc) QueueNotice(context.Context, *sqldb.Tx, string, string) error        { return nil }
func (mailFunc) QueuePatientNotice(context.Context, *sqldb.Tx, string, string) error { return nil }

// TestImportedConsentApplies: a privacy Consent the clinic imports (here
// a prohibited recipient) moves the patient's access version in the
// import's transaction, so the compiled policy applies it at the next
// request.
func TestImportedConsentApplies(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	ctx := context.Background()
	st := store.New(db)
	gs := &Grants{DB: db, Store: st}
	pols := &access.Store{DB: db, Loaders: []access.Loader{gs.LoadPolicy}}
	before, err := pols.Policy(ctx, "walter")
	if err != nil || len(before.Consents) != 0 {
		t.Fatalf("before: %+v %v", before, err)
	}
	consent := `{"resourceType":"Consent","id":"clinic-1","status":"active",
		"scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},
		"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],
		"patient":{"reference":"Patient/walter"},"dateTime":"2026-11-01T00:00:00Z",
		"provision":{"type":"permit","provision":[{"type":"deny","actor":[{"reference":{"reference":"Practitioner/y"}}]}]}}`
	dir := t.TempDir()
	path := filepath.Join(dir, "consent.ndjson")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(strings.ReplaceAll(consent, "\n", ""), "\t", "")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (&importer.Importer{Store: st}).Run(ctx, []string{path}); err != nil {
		t.Fatal(err)
	}
	after, err := pols.Policy(ctx, "walter")
	if err != nil || after.Version <= before.Version || len(after.Consents) != 1 || after.Consents[0].ID != "clinic-1" {
		t.Fatalf("after the import: version %d -> %d, %d consents, %v", before.Version, after.Version, len(after.Consents), err)
	}
	y := access.Principal{User: "Person/y", Role: access.RoleClinician, Practitioner: "Practitioner/y", Patient: "walter", CareRelationship: true,
		Policy: after, At: time.Now()}
	if d := access.Decide(ctx, y, access.Read, access.Target{Type: "Condition", Patients: []string{"walter"}}); d.Permit || d.Consent != "clinic-1" {
		t.Errorf("the prohibited clinician: %+v", d)
	}
}

// TestAppGrantConsentsAreRecordsOnly: the Consent that records an app's
// grant (oauth.Grant.ConsentResource) is not compiled as a rule; a
// Consent that only looks like one (the id prefix without the tag, a
// deny, an exception, anyone but an app as actor) is, whoever wrote it.
func TestAppGrantConsentsAreRecordsOnly(t *testing.T) {
	now := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	g := &oauth.Grant{ID: "g1", ClientID: "c1", Patient: "p1", FHIRUser: "Patient/p1", Created: now, Expires: now.AddDate(0, 0, 90),
		Scopes: []oauth.Scope{{Context: "patient", Type: "Observation", Perms: oauth.Read | oauth.Search}}}
	tree := func(change func(map[string]any)) map[string]any {
		raw, _ := json.Marshal(g.ConsentResource("Health Diary", now))
		var m map[string]any
		json.Unmarshal(raw, &m)
		if change != nil {
			change(m)
		}
		return m
	}
	if _, ok := ParseConsent(tree(nil)); ok {
		t.Error("an app grant's Consent was compiled as a rule")
	}
	for name, change := range map[string]func(map[string]any){
		"a deny": func(m map[string]any) { m["provision"].(map[string]any)["type"] = "deny" },
		"no tag": func(m map[string]any) { delete(m, "meta") },
		"a caregiver actor": func(m map[string]any) {
			m["provision"].(map[string]any)["actor"] = []any{map[string]any{"reference": map[string]any{"reference": "RelatedPerson/rp-1"}}}
		},
		"an exception": func(m map[string]any) {
			m["provision"].(map[string]any)["provision"] = []any{map[string]any{"type": "deny", "securityLabel": []any{map[string]any{"system": sysActCode, "code": "HIV"}}}}
		},
		"another id": func(m map[string]any) { m["id"] = "clinic-1" },
	} {
		if _, ok := ParseConsent(tree(change)); !ok {
			t.Errorf("%s: skipped", name)
		}
	}
}
