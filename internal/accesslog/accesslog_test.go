package accesslog

import (
	"context"
	"slices"
	"testing"
	"time"

	"carefront/internal/audit"
	"carefront/internal/audit/audittest"
	"carefront/internal/consent"
	"carefront/internal/identity"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

type accounts map[string]*identity.Account

func (a accounts) AccountByID(_ context.Context, id string) (*identity.Account, error) {
	if x, ok := a[id]; ok {
		return x, nil
	}
	return nil, identity.ErrNoAccount
}

// TestLogNamesWhoAndWhat: the patient's own views are "you", a
// caregiver's are named by their address, staff by role, an app by its
// id, the clinic's tools as the clinic; sign-in steps are left out;
// another patient's records never appear; the who filter and paging
// hold.
func TestLogNamesWhoAndWhat(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	sig, _ := audit.NewSigner(make([]byte, 32))
	aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test"})
	defer aw.Close(context.Background())
	ctx := context.Background()
	if err := db.Write(ctx, func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO account (id, kind, email, created, email_verified) VALUES ('care', 'person', 'care@example.com', 0, 0)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	grants := &consent.Grants{DB: db, Audit: aw}
	if _, err := grants.Grant(ctx, consent.NewGrant{Patient: "p", Email: "care@example.com", Preset: "full", Until: time.Now().AddDate(1, 0, 0), By: "carefront-cli"}); err != nil {
		t.Fatal(err)
	}
	view := func(user, client, patient string, types ...string) audit.Record {
		return audit.Record{Type: audit.TypeRESTful, Subtype: []audit.Coding{audit.SubtypeView, audit.ViewCoding("home")}, Action: audit.Read,
			Outcome: audit.Success, User: user, Client: client, Patient: "Patient/" + patient, DataTypes: types}
	}
	for _, r := range []audit.Record{
		view("Person/me", "", "p", "Observation", "MedicationRequest"),
		view("Person/care", "", "p", "MedicationRequest"),
		view("Person/nurse", "", "p", "Condition"),
		view("Person/someone", "", "other", "Observation"),
		{Type: audit.TypeRESTful, Subtype: []audit.Coding{audit.SubtypeSearch}, Action: audit.Execute, Outcome: audit.Success,
			Client: "app-1", Patient: "Patient/p", Query: "Immunization?patient=p"},
		{Type: audit.TypeUserAuthentication, Subtype: []audit.Coding{audit.SubtypeAuthStep}, Action: audit.Execute, Outcome: audit.MinorFailure,
			User: "Person/me", Patient: "Patient/p"},
	} {
		if err := aw.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	l := &Log{DB: db, Grants: grants, Accounts: accounts{
		"me":    {ID: "me", Kind: identity.Person, PatientID: "p"},
		"nurse": {ID: "nurse", Kind: identity.Staff, StaffRole: "clinician"},
	}}
	pg, err := l.Read(ctx, Query{Patient: "p", ViewerIsPatient: true})
	if err != nil {
		t.Fatal(err)
	}
	type got struct{ who, name, what, way string }
	var rows []got
	for _, r := range pg.Rows {
		rows = append(rows, got{r.Who, r.Name, r.What, r.Way})
	}
	want := []got{
		{WhoApp, "app-1", "looked-up", WayApp},
		{WhoClinic, "clinician", "viewed", WayClinic},
		{WhoCaregiver, "care@example.com", "viewed", WayPortal},
		{WhoYou, "", "viewed", WayPortal},
		{WhoClinic, "", "sharing", WayClinic},
	}
	if !slices.Equal(rows, want) {
		t.Errorf("rows\n%v\nwant\n%v", rows, want)
	}
	if k := pg.Rows[3].Kinds; !slices.Equal(k, []string{"medications", "results"}) {
		t.Errorf("kinds of the patient's view: %v", k)
	}
	if k := pg.Rows[0].Kinds; !slices.Equal(k, []string{"immunizations"}) {
		t.Errorf("kinds of the app's search: %v", k)
	}
	only, _ := l.Read(ctx, Query{Patient: "p", Who: WhoCaregiver, ViewerIsPatient: true})
	if len(only.Rows) != 1 || only.Rows[0].Name != "care@example.com" {
		t.Errorf("who=caregiver: %+v", only.Rows)
	}
	// Another caregiver reading the log sees "a caregiver", not the address.
	other, _ := l.Read(ctx, Query{Patient: "p", Who: WhoCaregiver, Viewer: "Person/someone-else"})
	if len(other.Rows) != 1 || other.Rows[0].Name != "" {
		t.Errorf("another caregiver sees %+v", other.Rows)
	}
	for i := 0; i < PageSize+5; i++ {
		aw.Append(ctx, view("Person/me", "", "p", "Observation"))
	}
	first, _ := l.Read(ctx, Query{Patient: "p"})
	second, _ := l.Read(ctx, Query{Patient: "p", Before: first.Next})
	if len(first.Rows) != PageSize || first.Next == 0 || len(second.Rows) != 10 || second.Next != 0 {
		t.Errorf("paging: %d rows next %d, then %d rows next %d (of %d records)", len(first.Rows), first.Next, len(second.Rows), second.Next, audittest.Count(t, db))
	}
}
