package fhirapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"carefront/internal/access"
	"carefront/internal/audit"
	"carefront/internal/audit/audittest"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/demo"
	"carefront/internal/fhir"
	"carefront/internal/fhirapi"
	"carefront/internal/oauth"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// demoFixture serves the API over the demo population, with a Provenance
// for one of Maria's results (its targets name her, as an import's
// Provenance does: R4 puts a Provenance in the compartment of the
// Patient it targets) and one of Walter's.
func demoFixture(t *testing.T, db *sqldb.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	st := store.New(db)
	b, err := demo.Bundle(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Process(ctx, b, store.BundleOptions{Import: true}); err != nil {
		t.Fatal(err)
	}
	prov, err := fhir.ParseBundle(json.RawMessage(`{"resourceType":"Bundle","type":"transaction","entry":[
		{"resource":{"resourceType":"Claim","id":"claim-m","status":"active","type":{"text":"x"},"use":"claim","patient":{"reference":"Patient/demo-maria"},
		  "created":"2026-01-01","provider":{"display":"x"},"priority":{"text":"normal"},"insurance":[{"sequence":1,"focal":true,"coverage":{"display":"x"}}]},"request":{"method":"PUT","url":"Claim/claim-m"}},
		{"resource":{"resourceType":"Provenance","id":"prov-a1c","target":[{"reference":"Observation/demo-maria-a1c-01"},{"reference":"Patient/demo-maria"},{"reference":"Claim/claim-m"}],"recorded":"2026-01-01T00:00:00Z",
		  "agent":[{"who":{"reference":"Organization/demo-clinic"}}]},"request":{"method":"PUT","url":"Provenance/prov-a1c"}},
		{"resource":{"resourceType":"Provenance","id":"prov-walter","target":[{"reference":"Patient/demo-walter"}],"recorded":"2026-01-01T00:00:00Z",
		  "agent":[{"who":{"reference":"Organization/demo-clinic"}}]},"request":{"method":"PUT","url":"Provenance/prov-walter"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Process(ctx, prov, store.BundleOptions{}); err != nil {
		t.Fatal(err)
	}
	sig, _ := audit.NewSigner(make([]byte, 32))
	aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test"})
	t.Cleanup(func() { aw.Close(ctx) })
	reg := &oauth.Clients{DB: db, Audit: aw}
	c, _, err := reg.Add(ctx, oauth.NewClient{Name: "Health Diary", Kind: oauth.KindPublic, RedirectURIs: []string{"https://diary.example/cb"}, Reviewed: true, By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Write(ctx, func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO account (id, kind, email, patient_id, created) VALUES ('acct-pa', 'person', 'maria@example.com', ?, 0)", demo.Maria)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	flow := &oauth.Flow{DB: db, Audit: aw}
	srv := httptest.NewServer(nil)
	t.Cleanup(srv.Close)
	gw := &clinical.Gateway{Source: st, Audit: aw, Policies: &access.Store{DB: db, Audit: aw}, Now: db.Now}
	mux := http.NewServeMux()
	mux.Handle("/fhir/R4/", &fhirapi.Handler{Flow: flow, Gateway: gw, Clients: reg, Base: srv.URL + "/fhir/R4"})
	srv.Config.Handler = mux
	return &fixture{db: db, srv: srv, flow: flow, client: c}
}

// ofPatient reports whether every match of a searchset is in patient's
// compartment by its subject or patient reference.
func ofPatient(b map[string]any, patient string) bool {
	for _, e := range list(b["entry"]) {
		em := e.(map[string]any)
		if s, _ := em["search"].(map[string]any); s == nil || s["mode"] != "match" {
			continue
		}
		r := em["resource"].(map[string]any)
		ref := ""
		for _, k := range []string{"subject", "patient", "beneficiary"} {
			if m, ok := r[k].(map[string]any); ok {
				ref, _ = m["reference"].(string)
			}
		}
		if r["resourceType"] == "Patient" {
			ref = "Patient/" + r["id"].(string)
		}
		for _, tg := range list(r["target"]) { // Provenance
			if tr, _ := tg.(map[string]any)["reference"].(string); strings.HasPrefix(tr, "Patient/") {
				ref = tr
			}
		}
		if ref != "Patient/"+patient {
			return false
		}
	}
	return true
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// TestG10SinglePatientAPI: the US Core 6.1.0 searches g(10) runs for one
// patient, over the demo population, each answered with the patient's own
// records only; read and vread; Patient/ID/$everything for the token's
// patient only; _revinclude=Provenance:target; an _include never reaches
// a type the token lacks. Every call is audited per BALP with the app as
// an agent (110150, its client id) and the token's id as the user's
// policy; searches keep their query.
func TestG10SinglePatientAPI(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := demoFixture(t, db)
		tok, _ := f.token(t, "launch/patient patient/*.rs")
		// f.token grants pa's record; this fixture's account is Maria's.
		_ = tok
		ctx := context.Background()
		ss, _ := oauth.ParseScopes("launch/patient patient/*.rs")
		r, err := f.flow.CreateRequest(ctx, oauth.Request{ClientID: f.client.ID, RedirectURI: "https://diary.example/cb", Scopes: ss, State: "s", Challenge: "c", ResponseMode: "query"})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.flow.Approve(ctx, r.ID, oauth.Approval{Account: "acct-pa", Patient: demo.Maria, Scopes: ss}); err != nil {
			t.Fatal(err)
		}
		f.flow.SaveCode(ctx, r.ID, "code-m")
		_, toks, err := f.flow.Exchange(ctx, "code-m", func(*oauth.Request) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		tok = toks.Access
		m := demo.Maria
		for _, q := range []string{
			"Patient?_id=" + m,
			"AllergyIntolerance?patient=" + m, "AllergyIntolerance?patient=" + m + "&clinical-status=active",
			"CarePlan?patient=" + m + "&category=assess-plan", "CareTeam?patient=" + m + "&status=active",
			"Condition?patient=" + m, "Condition?patient=" + m + "&category=problem-list-item", "Condition?patient=" + m + "&clinical-status=active",
			"DiagnosticReport?patient=" + m, "DiagnosticReport?patient=" + m + "&category=LAB", "DiagnosticReport?patient=" + m + "&code=4548-4",
			"DocumentReference?patient=" + m, "DocumentReference?patient=" + m + "&type=http://loinc.org|34133-9",
			"Encounter?patient=" + m, "Encounter?patient=" + m + "&date=ge2020-01-01",
			"Goal?patient=" + m, "Immunization?patient=" + m,
			"MedicationRequest?patient=" + m + "&intent=order", "MedicationRequest?patient=" + m + "&intent=order&status=active",
			"Observation?patient=" + m + "&category=laboratory", "Observation?patient=" + m + "&code=4548-4",
			"Observation?patient=" + m + "&category=laboratory&date=ge2020-01-01", "Observation?patient=" + m + "&code=4548-4&date=ge2020-01-01",
			"Observation?patient=" + m + "&category=vital-signs", "Observation?patient=" + m + "&code=4548-4&_sort=date",
			"Procedure?patient=" + m, "Procedure?patient=" + m + "&date=ge2020-01-01",
			"Coverage?patient=" + m, "Device?patient=" + m, "ServiceRequest?patient=" + m, "Specimen?patient=" + m,
			"QuestionnaireResponse?patient=" + m, "MedicationDispense?patient=" + m, "Provenance?patient=" + m,
			// Another patient's records are absent, never an error.
			"Observation?patient=" + demo.Walter, "Condition?patient=" + demo.Walter,
		} {
			status, b, _ := f.get(t, tok, q)
			if status != 200 || b["resourceType"] != "Bundle" || !ofPatient(b, m) {
				t.Errorf("GET %s: %d, only Maria's: %v", q, status, ofPatient(b, m))
			}
		}
		if _, b, _ := f.get(t, tok, "Observation?patient="+m+"&code=4548-4"); len(ids(b)) == 0 {
			t.Error("Maria's A1c results are missing")
		}
		if _, b, _ := f.get(t, tok, "Observation?patient="+demo.Walter); len(ids(b)) != 0 {
			t.Errorf("Walter's results through Maria's app: %v", ids(b))
		}

		// read, vread
		status, obs, _ := f.get(t, tok, "Observation/demo-maria-a1c-01")
		if status != 200 {
			t.Fatalf("read: %d", status)
		}
		v := obs["meta"].(map[string]any)["versionId"].(string)
		if status, o, _ := f.get(t, tok, "Observation/demo-maria-a1c-01/_history/"+v); status != 200 || o["id"] != "demo-maria-a1c-01" {
			t.Errorf("vread: %d", status)
		}
		for _, p := range []string{"Observation/demo-maria-a1c-01/_history/99", "Patient/" + demo.Walter + "/_history/1", "Patient/" + demo.Walter} {
			if status, _, _ := f.get(t, tok, p); status != 404 {
				t.Errorf("GET %s: %d, want 404", p, status)
			}
		}

		// $everything: hers, and only hers.
		status, all, _ := f.get(t, tok, "Patient/"+m+"/$everything")
		types := map[string]bool{}
		for _, e := range list(all["entry"]) {
			types[e.(map[string]any)["resource"].(map[string]any)["resourceType"].(string)] = true
		}
		if status != 200 || !ofPatient(all, m) || !types["Patient"] || !types["Observation"] || !types["Condition"] || !types["MedicationRequest"] {
			t.Errorf("$everything: %d, types %v", status, types)
		}
		if status, _, _ := f.get(t, tok, "Patient/"+demo.Walter+"/$everything"); status != 404 {
			t.Errorf("Walter's $everything: %d, want 404", status)
		}

		// _revinclude=Provenance:target
		_, withProv, _ := f.get(t, tok, "Observation?patient="+m+"&code=4548-4&_revinclude=Provenance:target")
		if got := strings.Join(ids(withProv), ","); !strings.Contains(got, "prov-a1c") || strings.Contains(got, "prov-walter") {
			t.Errorf("_revinclude: %s", got)
		}
		// A wildcard scope reaches the API's types only, through _include too.
		if status, b, _ := f.get(t, tok, "Provenance?patient="+m+"&_include=Provenance:target"); status != 200 ||
			!strings.Contains(strings.Join(ids(b), ","), "demo-maria-a1c-01") || strings.Contains(strings.Join(ids(b), ","), "claim-m") {
			t.Errorf("_include of a Claim through patient/*.rs: %d %v", status, ids(b))
		}
		if status, _, _ := f.get(t, tok, "Observation?patient="+m+"&_revinclude=AuditEvent:entity"); status != 400 {
			t.Errorf("another _revinclude: %d, want 400", status)
		}

		// An _include reaches only granted types.
		ss2, _ := oauth.ParseScopes("patient/MedicationRequest.rs")
		r2, _ := f.flow.CreateRequest(ctx, oauth.Request{ClientID: f.client.ID, RedirectURI: "https://diary.example/cb", Scopes: ss2, State: "s", Challenge: "c", ResponseMode: "query"})
		f.flow.Approve(ctx, r2.ID, oauth.Approval{Account: "acct-pa", Patient: m, Scopes: ss2})
		f.flow.SaveCode(ctx, r2.ID, "code-m2")
		_, narrow, _ := f.flow.Exchange(ctx, "code-m2", func(*oauth.Request) error { return nil })
		if status, b, _ := f.get(t, narrow.Access, "MedicationRequest?patient="+m+"&_include=MedicationRequest:requester"); status != 200 || strings.Contains(strings.Join(ids(b), ","), "dr-") {
			t.Errorf("_include of a type not granted: %d %v", status, ids(b))
		}

		// BALP: the app as an agent, the token's id as the user's policy,
		// the query kept.
		events := audittest.Events(t, db)
		found := false
		for _, e := range events {
			if strings.Contains(e, `"code":"110150"`) && strings.Contains(e, f.client.ID) && strings.Contains(e, `"policy":["urn:carefront:access-token:`) &&
				strings.Contains(e, `"code":"24"`) {
				found = true
			}
			if strings.Contains(e, tok) {
				t.Fatal("an access token is in the audit trail")
			}
		}
		if !found {
			t.Error("no search audit record carries the app agent, the token's id and the query")
		}
	})
}
