package clinical_test

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

func put(t *testing.T, st *store.Store, resources ...string) {
	t.Helper()
	b := &fhir.Bundle{ResourceType: "Bundle", Type: "transaction"}
	for _, raw := range resources {
		var head struct{ ResourceType, ID string }
		json.Unmarshal([]byte(raw), &head)
		b.Entry = append(b.Entry, &fhir.Entry{Resource: json.RawMessage(raw), Request: &fhir.EntryRequest{Method: "PUT", URL: head.ResourceType + "/" + head.ID}})
	}
	if _, err := st.Process(context.Background(), b, store.BundleOptions{}); err != nil {
		t.Fatal(err)
	}
}

func appt(id, patient, start string) string {
	return `{"resourceType":"Appointment","id":"` + id + `","status":"booked","start":"` + start + `","end":"` + start + `",
		"participant":[{"actor":{"reference":"Patient/` + patient + `"},"status":"accepted"}]}`
}

// TestOverlay: in upstream mode carefront's own Appointments come before
// the EHR's, read and searched, paged with one total across both; other
// types come from the EHR alone even when carefront holds one of the
// same id; and the gateway in front refuses another patient's booking as
// it refuses the EHR's records.
func TestOverlay(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		own := store.New(db)
		ehr := store.New(sqldbtest.Open(t, sqldb.SQLite))
		put(t, own, `{"resourceType":"Patient","id":"pa"}`, `{"resourceType":"Patient","id":"pb"}`,
			appt("own-1", "pa", "2026-12-01T09:00:00Z"), appt("own-2", "pa", "2026-12-02T09:00:00Z"), appt("own-b", "pb", "2026-12-03T09:00:00Z"),
			appt("both", "pa", "2026-12-04T09:00:00Z"),
			`{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"carefront's"},"subject":{"reference":"Patient/pa"}}`)
		put(t, ehr, `{"resourceType":"Patient","id":"pa"}`, `{"resourceType":"Patient","id":"pb"}`,
			appt("ehr-1", "pa", "2026-10-01T09:00:00Z"), appt("both", "pa", "2020-01-01T09:00:00Z"),
			`{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"the EHR's"},"subject":{"reference":"Patient/pa"}}`)
		o := &clinical.Overlay{Own: own, Upstream: ehr, Types: clinical.OwnTypes}

		for id, want := range map[string]string{"own-1": "2026-12-01", "ehr-1": "2026-10-01", "both": "2026-12-04"} {
			r, err := o.Read(ctx, "Appointment", id)
			if err != nil || !json.Valid(r.Raw) || !contains(string(r.Raw), want) {
				t.Errorf("Appointment/%s: %v %s, want the one starting %s", id, err, raw(r), want)
			}
		}
		if r, err := o.Read(ctx, "Observation", "o1"); err != nil || !contains(string(r.Raw), "the EHR's") {
			t.Errorf("an Observation is the EHR's: %v %s", err, raw(r))
		}
		if _, err := o.Read(ctx, "Appointment", "nowhere"); apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("a missing Appointment: %v", err)
		}

		// Three of carefront's and two of the EHR's for pa ("both" twice:
		// each side answers its own), one a page.
		var ids []string
		q, err := fhir.ParseQuery("Appointment", url.Values{"patient": {"Patient/pa"}, "_count": {"1"}, "_total": {"accurate"}}, false)
		if err != nil {
			t.Fatal(err)
		}
		for range 10 {
			page, err := o.Search(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if page.Total == nil || *page.Total != 5 {
				t.Errorf("page %d: total %v, want 5", len(ids)+1, fmtTotal(page.Total))
			}
			for _, m := range page.Matches {
				ids = append(ids, m.ID)
			}
			if page.Next == "" {
				break
			}
			q.Cursor = page.Next
		}
		slices.Sort(ids)
		if want := []string{"both", "both", "ehr-1", "own-1", "own-2"}; !slices.Equal(ids, want) {
			t.Errorf("pages gave %v, want %v", ids, want)
		}
		q.Cursor = "x:1"
		if _, err := o.Search(ctx, q); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("a made-up cursor: %v", err)
		}

		sig, _ := audit.NewSigner(make([]byte, 32))
		aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test", CheckpointEvery: 100})
		t.Cleanup(func() { aw.Close(ctx) })
		gw := &clinical.Gateway{Source: o, Audit: aw}
		if _, err := gw.Read(ctx, patientA, "Appointment", "own-b"); apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("another patient's booking through the gateway: %v", err)
		}
		if _, err := gw.Read(ctx, patientA, "Appointment", "own-1"); err != nil {
			t.Errorf("Maria's own booking through the gateway: %v", err)
		}
	})
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func raw(r *fhir.Resource) string {
	if r == nil {
		return "<nil>"
	}
	return string(r.Raw)
}

func fmtTotal(n *int) any {
	if n == nil {
		return "unknown"
	}
	return *n
}
