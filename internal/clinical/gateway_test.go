package clinical_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/audit/audittest"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/consent"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

const population = `{"resourceType":"Bundle","type":"transaction","entry":[
 {"resource":{"resourceType":"Patient","id":"pa"},"request":{"method":"PUT","url":"Patient/pa"}},
 {"resource":{"resourceType":"Patient","id":"pb"},"request":{"method":"PUT","url":"Patient/pb"}},
 {"resource":{"resourceType":"Observation","id":"oa","status":"final","code":{"text":"a"},"subject":{"reference":"Patient/pa"}},"request":{"method":"PUT","url":"Observation/oa"}},
 {"resource":{"resourceType":"Observation","id":"ob","status":"final","code":{"text":"b"},"subject":{"reference":"Patient/pb"}},"request":{"method":"PUT","url":"Observation/ob"}},
 {"resource":{"resourceType":"Medication","id":"m1","code":{"text":"m"}},"request":{"method":"PUT","url":"Medication/m1"}},
 {"resource":{"resourceType":"MedicationRequest","id":"mra","status":"active","intent":"order","subject":{"reference":"Patient/pa"},"medicationReference":{"reference":"Medication/m1"}},"request":{"method":"PUT","url":"MedicationRequest/mra"}},
 {"resource":{"resourceType":"Observation","id":"oa2","status":"final","code":{"text":"c"},"subject":{"reference":"Patient/pa"},"hasMember":[{"reference":"Observation/ob"}]},"request":{"method":"PUT","url":"Observation/oa2"}},
 {"resource":{"resourceType":"Account","id":"acc","status":"active"},"request":{"method":"PUT","url":"Account/acc"}}
]}`

type fixture struct {
	db *sqldb.DB
	gw *clinical.Gateway
	aw *audit.Writer
	st *store.Store
}

func setup(t *testing.T, db *sqldb.DB) *fixture {
	t.Helper()
	st := store.New(db)
	b, err := fhir.ParseBundle(json.RawMessage(population))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Process(context.Background(), b, store.BundleOptions{}); err != nil {
		t.Fatal(err)
	}
	sig, _ := audit.NewSigner(make([]byte, 32))
	aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test", CheckpointEvery: 100})
	t.Cleanup(func() { aw.Close(context.Background()) })
	return &fixture{db: db, gw: &clinical.Gateway{Source: st, Audit: aw}, aw: aw, st: st}
}

var patientA = clinical.Request{Principal: access.Principal{User: "Patient/pa", Patient: "pa", Address: "192.0.2.1"}, RequestID: "req-1"}

func TestGatewayRead(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := setup(t, db)
		ctx := context.Background()
		r, err := f.gw.Read(ctx, patientA, "Observation", "oa")
		if err != nil || r.ID != "oa" {
			t.Fatalf("own record: %v", err)
		}
		outcome, patient, ev := audittest.Last(t, db)
		if outcome != string(audit.Success) || patient != "Patient/pa" || !strings.Contains(ev, "Observation/oa") || !strings.Contains(ev, "req-1") {
			t.Errorf("audit of own read: %s %s %s", outcome, patient, ev)
		}
		// Another patient's record looks exactly like a missing one.
		_, err = f.gw.Read(ctx, patientA, "Observation", "ob")
		_, missing := f.gw.Read(ctx, patientA, "Observation", "nope")
		if apperr.CodeOf(err) != apperr.NotFound || apperr.MessageOf(err) != strings.Replace(apperr.MessageOf(missing), "nope", "ob", 1) {
			t.Errorf("other patient's record: %v (missing one: %v)", err, missing)
		}
		_, err = f.gw.Read(ctx, patientA, "Observation", "ob")
		outcome, patient, ev = audittest.Last(t, db)
		if outcome != string(audit.MinorFailure) || patient != "Patient/pb" || !strings.Contains(ev, access.ReasonOtherPatient) {
			t.Errorf("audit of denied read: %s %s %s", outcome, patient, ev)
		}
		// Directory resources are readable; other non-patient data is not.
		if _, err := f.gw.Read(ctx, patientA, "Medication", "m1"); err != nil {
			t.Errorf("medication: %v", err)
		}
		if _, err := f.gw.Read(ctx, patientA, "Account", "acc"); apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("account: err = %v, want denied as not found", err)
		}
		// Nobody acting for no patient reads anything.
		if _, err := f.gw.Read(ctx, clinical.Request{}, "Observation", "oa"); apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("no patient context: err = %v", err)
		}
	})
}

func TestGatewaySearchIsLimitedToOwnCompartment(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := setup(t, db)
		ctx := context.Background()
		search := func(req clinical.Request, typ string, params map[string][]string) (*fhir.Page, error) {
			q, err := fhir.ParseQuery(typ, params, false)
			if err != nil {
				t.Fatal(err)
			}
			q.Total = true
			return f.gw.Search(ctx, req, q)
		}
		page, err := search(patientA, "Observation", nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range page.Matches {
			got = append(got, r.ID)
		}
		if diff := cmp.Diff([]string{"oa", "oa2"}, got); diff != "" || *page.Total != 2 {
			t.Errorf("matches (-want +got):\n%s total %d", diff, *page.Total)
		}
		// Asking for another patient's data finds nothing, and says nothing.
		page, err = search(patientA, "Observation", map[string][]string{"patient": {"pb"}})
		if err != nil || len(page.Matches) != 0 || *page.Total != 0 {
			t.Errorf("other patient's search: %v %d", err, len(page.Matches))
		}
		// Includes: the directory Medication comes along; another
		// patient's Observation does not.
		page, err = search(patientA, "MedicationRequest", map[string][]string{"_include": {"MedicationRequest:medication"}})
		if err != nil || len(page.Included) != 1 || page.Included[0].ID != "m1" {
			t.Errorf("include medication: %v %+v", err, page.Included)
		}
		page, err = search(patientA, "Observation", map[string][]string{"_include": {"Observation:has-member"}})
		if err != nil || len(page.Included) != 0 {
			t.Errorf("include of another patient's member: %v, %d included", err, len(page.Included))
		}
		// No patient context: denied and audited.
		_, err = search(clinical.Request{Principal: access.Principal{User: "Practitioner/x"}}, "Observation", nil)
		if apperr.CodeOf(err) != apperr.Forbidden {
			t.Errorf("no patient: err = %v", err)
		}
		outcome, _, ev := audittest.Last(t, db)
		if outcome != string(audit.MinorFailure) || !strings.Contains(ev, access.ReasonNoPatient) {
			t.Errorf("denial not audited: %s %s", outcome, ev)
		}
	})
}

// leakySource returns everything, whatever the query says: like an upstream
// server that ignores the compartment narrowing.
type leakySource struct{ *store.Store }

func (s leakySource) Search(ctx context.Context, q *fhir.Query) (*fhir.Page, error) {
	wide := *q
	wide.Compartment = ""
	return s.Store.Search(ctx, &wide)
}

func TestGatewayFiltersWhatASourceShouldNotHaveReturned(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := setup(t, db)
		f.gw.Source = leakySource{f.st}
		q, _ := fhir.ParseQuery("Observation", map[string][]string{"_total": {"accurate"}}, false)
		page, err := f.gw.Search(context.Background(), patientA, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Matches {
			if r.ID == "ob" {
				t.Fatal("another patient's Observation passed the gateway")
			}
		}
		if page.Total != nil {
			t.Errorf("total %d kept although results were dropped", *page.Total)
		}
	})
}

func TestGatewayFailsWhenTheAccessCannotBeAudited(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := setup(t, db)
		if err := f.aw.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		r, err := f.gw.Read(context.Background(), patientA, "Observation", "oa")
		if r != nil || apperr.CodeOf(err) != apperr.Internal {
			t.Fatalf("read with a closed audit writer: %v, %v; want a failure and no data", r, err)
		}
	})
}

// A search that returns several patients' data is recorded once per
// patient (IHE BALP PatientQuery), each with the query and none of the
// returned resources, so every patient sees it in their own access log.
func TestGatewaySearchIsAuditedOncePerPatientFound(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := setup(t, db)
		ctx := context.Background()
		var before int
		db.Read(ctx, func(tx *sqldb.Tx) error {
			return tx.QueryRow(ctx, "SELECT COUNT(*) FROM audit_event").Scan(&before)
		})
		q, err := fhir.ParseQuery("Observation", map[string][]string{"status": {"final"}}, false)
		if err != nil {
			t.Fatal(err)
		}
		operator := clinical.Request{Principal: access.Principal{Client: "carefront-cli", Role: access.RoleOperator}}
		page, err := f.gw.Search(ctx, operator, q)
		if err != nil || len(page.Matches) != 3 {
			t.Fatalf("operator search: %v, %d matches", err, len(page.Matches))
		}
		var patients []string
		var events []string
		db.Read(ctx, func(tx *sqldb.Tx) error {
			rows, err := tx.Query(ctx, "SELECT patient, event FROM audit_event WHERE seq > ? ORDER BY seq", before)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var p *string
				var ev []byte
				rows.Scan(&p, &ev)
				if p != nil {
					patients = append(patients, *p)
				}
				events = append(events, string(ev))
			}
			return nil
		})
		if diff := cmp.Diff([]string{"Patient/pa", "Patient/pb"}, patients); diff != "" {
			t.Errorf("records per patient (-want +got):\n%s", diff)
		}
		for _, ev := range events {
			if strings.Contains(ev, "Observation/o") || !strings.Contains(ev, `"code":"24"`) || !strings.Contains(ev, `"query":"`) {
				t.Errorf("a search record lists resources or lacks the query: %s", ev)
			}
		}
	})
}

// TestTeenagersSensitiveRecordsAreLeftOutOfSearches: a parent's search
// of a teenager's record leaves the sensitive records out before it runs
// on the embedded store (labels derived from codes are indexed), so pages
// are full and totals count only what the parent sees; where the index
// does not have the labels (a store written before them), each record is
// still decided and the total is withheld rather than wrong.
func TestTeenagersSensitiveRecordsAreLeftOutOfSearches(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		labels, err := consent.LoadLabels()
		if err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
		cond := func(id, code string) string {
			return `{"resource":{"resourceType":"Condition","id":"` + id + `","code":{"coding":[{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"` + code + `"}]},` +
				`"subject":{"reference":"Patient/teen"}},"request":{"method":"PUT","url":"Condition/` + id + `"}}`
		}
		b, err := fhir.ParseBundle(json.RawMessage(`{"resourceType":"Bundle","type":"transaction","entry":[
			{"resource":{"resourceType":"Patient","id":"teen","birthDate":"2011-03-01"},"request":{"method":"PUT","url":"Patient/teen"}},` +
			cond("anx", "F41.1") + "," + cond("asthma", "J45.909") + "," + cond("dep", "F32.9") + "," + cond("ear", "H66.90") + `]}`))
		if err != nil {
			t.Fatal(err)
		}
		sig, _ := audit.NewSigner(make([]byte, 32))
		aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test", CheckpointEvery: 100})
		defer aw.Close(ctx)
		parent := clinical.Request{Principal: access.Principal{User: "Person/parent", Patient: "teen", At: now,
			Proxy: &access.Proxy{Account: "Person/parent", Until: now.AddDate(1, 0, 0), PatientBirth: time.Date(2011, 3, 1, 0, 0, 0, 0, time.UTC)}}}
		page := func(gw *clinical.Gateway, cursor string) *fhir.Page {
			t.Helper()
			q, err := fhir.ParseQuery("Condition", map[string][]string{"_count": {"1"}, "_total": {"accurate"}}, false)
			if err != nil {
				t.Fatal(err)
			}
			q.Cursor = cursor
			p, err := gw.Search(ctx, parent, q)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}

		indexed := store.New(db)
		indexed.Labels = labels
		if _, err := indexed.Process(ctx, b, store.BundleOptions{}); err != nil {
			t.Fatal(err)
		}
		gw := &clinical.Gateway{Source: indexed, Audit: aw, Labeler: labels}
		var seen []string
		for cursor, n := "", 0; n < 5; n++ {
			p := page(gw, cursor)
			if p.Total == nil || *p.Total != 2 {
				t.Fatalf("page %d: total %v, want 2 (the asthma and the ear infection)", n, p.Total)
			}
			if len(p.Matches) != 1 {
				t.Fatalf("page %d has %d records, want a full page of 1", n, len(p.Matches))
			}
			seen = append(seen, p.Matches[0].ID)
			if cursor = p.Next; cursor == "" {
				break
			}
		}
		if diff := cmp.Diff([]string{"asthma", "ear"}, seen); diff != "" {
			t.Errorf("pages (-want +got):\n%s", diff)
		}

		// The same records as a store without the derived labels indexed
		// returns them: the gateway still hides both diagnoses.
		unindexed := &clinical.Gateway{Source: store.New(db), Audit: aw, Labeler: labels}
		if err := db.Write(ctx, func(tx *sqldb.Tx) error {
			_, err := tx.Exec(ctx, "DELETE FROM fhir_token WHERE param = '_security'")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		var all []string
		withheld := false
		for cursor, n := "", 0; n < 5; n++ {
			p := page(unindexed, cursor)
			for _, r := range p.Matches {
				all = append(all, r.ID)
			}
			withheld = withheld || p.Total == nil
			if cursor = p.Next; cursor == "" {
				break
			}
		}
		if diff := cmp.Diff([]string{"asthma", "ear"}, all); diff != "" || !withheld {
			t.Errorf("unindexed (-want +got):\n%s; total withheld on a page that hid one: %v", diff, withheld)
		}
	})
}

// TestMayWrite: a patient may write to their own record; a caregiver
// whose grant has messages only may write messages but not book, and an
// app may write nothing; each refusal is audited with its reason and the
// patient.
func TestMayWrite(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := setup(t, db)
		ctx := context.Background()
		caregiver := clinical.Request{Principal: access.Principal{User: "RelatedPerson/rp", Patient: "pa", Caregiver: true,
			Proxy: &access.Proxy{GrantID: "g", Kinds: []string{"Communication"}, Until: time.Now().Add(time.Hour)}}}
		app := clinical.Request{Principal: access.Principal{User: "Patient/pa", Patient: "pa", Client: "app-1"}}
		for _, tc := range []struct {
			name string
			req  clinical.Request
			typ  string
			want bool
		}{
			{"the patient books", patientA, "Appointment", true},
			{"the patient writes a message", patientA, "Communication", true},
			{"a messages-only caregiver writes a message", caregiver, "Communication", true},
			{"a messages-only caregiver books", caregiver, "Appointment", false},
			{"an app writes a message", app, "Communication", false},
		} {
			before := audittest.Count(t, db)
			ok, err := f.gw.MayWrite(ctx, tc.req, tc.typ)
			if err != nil || ok != tc.want {
				t.Errorf("%s: %v, %v; want %v", tc.name, ok, err, tc.want)
			}
			switch after := audittest.Count(t, db); {
			case tc.want && after != before:
				t.Errorf("%s: a permitted check was audited", tc.name)
			case !tc.want:
				outcome, patient, _ := audittest.Last(t, db)
				if after != before+1 || outcome != string(audit.MinorFailure) || patient != "Patient/pa" {
					t.Errorf("%s: refusal audited as %s %s (%d records added)", tc.name, outcome, patient, after-before)
				}
			}
		}
	})
}
