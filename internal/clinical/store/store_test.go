package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"carefront/internal/apperr"
	"carefront/internal/clinical/store"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

func newStore(t *testing.T, db *sqldb.DB) *store.Store {
	t.Helper()
	s := store.New(db)
	n := 0
	s.NewID = func() string { n++; return fmt.Sprintf("id-%d", n) }
	return s
}

func mustParse(t *testing.T, raw string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatalf("unmarshal %s: %v", raw, err)
	}
	return v
}

func withoutMeta(v map[string]any) map[string]any {
	delete(v, "meta")
	delete(v, "id")
	return v
}

// A resource comes back with everything it was written with: extensions,
// primitive extensions and unknown members included.
func TestRoundTripKeepsEverything(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s := newStore(t, db)
		ctx := context.Background()
		in := `{"resourceType":"Patient","extension":[{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex","valueCode":"F"}],
			"birthDate":"1970-03-04","_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthTime","valueDateTime":"1970-03-04T10:15:00-05:00"}]},
			"name":[{"family":"Rivera","given":["Ana","María"]}],"gender":"female","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"R"}]}}`
		w, err := s.Create(ctx, []byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if w.Status != 201 || w.Resource.VersionID != "1" || w.Resource.ID != "id-1" {
			t.Fatalf("create: status %d version %s id %s", w.Status, w.Resource.VersionID, w.Resource.ID)
		}
		got, err := s.Read(ctx, "Patient", "id-1")
		if err != nil {
			t.Fatal(err)
		}
		gv := mustParse(t, string(got.Raw))
		meta := gv["meta"].(map[string]any)
		if meta["versionId"] != "1" || meta["lastUpdated"] == nil || meta["security"] == nil {
			t.Errorf("meta = %v, want versionId 1, lastUpdated and the security label kept", meta)
		}
		want := withoutMeta(mustParse(t, in))
		if diff := cmp.Diff(want, withoutMeta(gv)); diff != "" {
			t.Errorf("round trip changed the resource (-want +got):\n%s", diff)
		}
		if !strings.HasPrefix(string(got.Raw), `{"resourceType":"Patient","id":"id-1","meta":{"versionId":"1","lastUpdated":`) {
			t.Errorf("stored JSON should lead with resourceType, id, meta: %.90s", got.Raw)
		}
	})
}

func TestVersionsHistoryAndDelete(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s := newStore(t, db)
		ctx := context.Background()
		clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		db.Now = func() time.Time { clock = clock.Add(time.Second); return clock }
		obs := func(status string) []byte {
			return []byte(`{"resourceType":"Observation","status":"` + status + `","code":{"coding":[{"system":"http://loinc.org","code":"4548-4"}]},"subject":{"reference":"Patient/p1"}}`)
		}
		w, err := s.Update(ctx, "Observation", "o1", obs("preliminary"), "")
		if err != nil || w.Status != 201 || w.Resource.VersionID != "1" {
			t.Fatalf("update-as-create: %+v, %v", w, err)
		}
		if diff := cmp.Diff([]string{"p1"}, w.Patients); diff != "" {
			t.Errorf("compartment (-want +got):\n%s", diff)
		}
		// Writing the same content again makes no new version.
		w, err = s.Update(ctx, "Observation", "o1", obs("preliminary"), "")
		if err != nil || w.Changed || w.Resource.VersionID != "1" {
			t.Fatalf("unchanged update: %+v, %v", w, err)
		}
		// A stale If-Match is refused and changes nothing.
		_, err = s.Update(ctx, "Observation", "o1", obs("final"), `W/"7"`)
		if apperr.CodeOf(err) != apperr.Precondition {
			t.Fatalf("stale If-Match: err = %v, want precondition failure", err)
		}
		if r, _ := s.Read(ctx, "Observation", "o1"); r.VersionID != "1" {
			t.Fatalf("after refused update: version %s, want 1", r.VersionID)
		}
		w, err = s.Update(ctx, "Observation", "o1", obs("final"), `W/"1"`)
		if err != nil || w.Status != 200 || w.Resource.VersionID != "2" {
			t.Fatalf("update with If-Match: %+v, %v", w, err)
		}
		old, err := s.VRead(ctx, "Observation", "o1", "1")
		if err != nil || !strings.Contains(string(old.Raw), "preliminary") {
			t.Fatalf("vread 1: %v %s", err, old.Raw)
		}
		if _, err := s.Delete(ctx, "Observation", "o1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Read(ctx, "Observation", "o1"); apperr.CodeOf(err) != apperr.Gone {
			t.Errorf("read after delete: err = %v, want gone", err)
		}
		hist, err := s.History(ctx, "Observation", "o1")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range hist {
			got = append(got, fmt.Sprintf("%d deleted=%v", v.Version, v.Deleted))
		}
		if diff := cmp.Diff([]string{"3 deleted=true", "2 deleted=false", "1 deleted=false"}, got); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
		page := search(t, s, "Observation", "patient=p1")
		if len(page.Matches) != 0 {
			t.Errorf("a deleted resource is still found by search")
		}
		// It can be written again, as a new version.
		w, err = s.Update(ctx, "Observation", "o1", obs("amended"), "")
		if err != nil || w.Resource.VersionID != "4" {
			t.Fatalf("recreate: %+v %v", w, err)
		}
	})
}

func TestBadWritesChangeNothing(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s := newStore(t, db)
		ctx := context.Background()
		for _, tc := range []struct{ name, body, want string }{
			{"malformed JSON", `{"resourceType":"Patient",`, "not valid JSON"},
			{"not an object", `["Patient"]`, "JSON object"},
			{"no resourceType", `{"id":"x"}`, "no resourceType"},
			{"unknown resourceType", `{"resourceType":"Patience"}`, "not a FHIR R4 resource type"},
			{"illegal id", `{"resourceType":"Patient","id":"a b/c"}`, "not a valid FHIR id"},
			{"wrong JSON type", `{"resourceType":7}`, "wrong JSON type"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := s.Create(ctx, []byte(tc.body))
				if apperr.CodeOf(err) != apperr.Invalid || !strings.Contains(apperr.MessageOf(err), tc.want) {
					t.Fatalf("err = %v, want invalid mentioning %q", err, tc.want)
				}
			})
		}
		if _, err := s.Update(ctx, "Patient", "p1", []byte(`{"resourceType":"Observation","status":"final"}`), ""); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("type mismatch: err = %v", err)
		}
		if _, err := s.Update(ctx, "Patient", "a b", []byte(`{"resourceType":"Patient"}`), ""); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("bad id in URL: err = %v", err)
		}
		page := search(t, s, "Patient", "_total=accurate")
		if *page.Total != 0 {
			t.Errorf("bad writes stored %d resources", *page.Total)
		}
	})
}

func search(t *testing.T, s *store.Store, typ, query string) *fhir.Page {
	t.Helper()
	vals, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	q, err := fhir.ParseQuery(typ, vals, false)
	if err != nil {
		t.Fatalf("ParseQuery(%s?%s): %v", typ, query, err)
	}
	page, err := s.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("Search(%s?%s): %v", typ, query, err)
	}
	return page
}

func ids(rs []*fhir.Resource) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

// seed writes a small labelled population through a transaction Bundle.
func seed(t *testing.T, s *store.Store) {
	t.Helper()
	obs := func(id, patient, system, code, date, status string) string {
		return fmt.Sprintf(`{"fullUrl":"urn:uuid:%s","resource":{"resourceType":"Observation","id":"%s","status":"%s",
			"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],
			"code":{"coding":[{"system":"%s","code":"%s"}]},"subject":{"reference":"%s"},"effectiveDateTime":"%s"},
			"request":{"method":"PUT","url":"Observation/%s"}}`, id, id, status, system, code, patient, date, id)
	}
	entries := []string{
		`{"fullUrl":"urn:uuid:pa","resource":{"resourceType":"Patient","id":"pa"},"request":{"method":"PUT","url":"Patient/pa"}}`,
		`{"fullUrl":"urn:uuid:pb","resource":{"resourceType":"Patient","id":"pb"},"request":{"method":"PUT","url":"Patient/pb"}}`,
		obs("a1", "urn:uuid:pa", "http://loinc.org", "4548-4", "2023-01-15T09:00:00Z", "final"),
		obs("a2", "urn:uuid:pa", "http://loinc.org", "4548-4", "2023-06-20T09:00:00Z", "final"),
		obs("a3", "urn:uuid:pa", "http://loinc.org", "4548-4", "2024-02-01", "final"),
		obs("a4", "urn:uuid:pa", "http://loinc.org", "2093-3", "2023-06-20T09:30:00+02:00", "preliminary"),
		obs("a5", "urn:uuid:pa", "urn:local", "4548-4", "2022-12-31T23:59:59Z", "final"),
		obs("b1", "urn:uuid:pb", "http://loinc.org", "4548-4", "2023-03-01T00:00:00Z", "final"),
		`{"fullUrl":"urn:uuid:med","resource":{"resourceType":"Medication","id":"med","code":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"860975"}]}},"request":{"method":"PUT","url":"Medication/med"}}`,
		`{"resource":{"resourceType":"MedicationRequest","id":"mr1","status":"active","intent":"order","subject":{"reference":"urn:uuid:pa"},"medicationReference":{"reference":"urn:uuid:med"},"authoredOn":"2023-05-01"},"request":{"method":"PUT","url":"MedicationRequest/mr1"}}`,
		`{"resource":{"resourceType":"Condition","id":"c1","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}]},"code":{"coding":[{"system":"http://snomed.info/sct","code":"44054006"}]},"subject":{"reference":"urn:uuid:pa"},"meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"PSY"}]}},"request":{"method":"PUT","url":"Condition/c1"}}`,
	}
	b, err := fhir.ParseBundle(json.RawMessage(`{"resourceType":"Bundle","type":"transaction","entry":[` + strings.Join(entries, ",") + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Process(context.Background(), b, store.BundleOptions{}); err != nil {
		t.Fatalf("seed: %v", err)
	}
}

func TestSearch(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s := newStore(t, db)
		seed(t, s)
		for _, tc := range []struct {
			typ, query string
			want       []string
		}{
			{"Observation", "patient=pa", []string{"a1", "a2", "a3", "a4", "a5"}},
			{"Observation", "patient=Patient/pb", []string{"b1"}},
			{"Observation", "subject=Patient/pa&code=2093-3", []string{"a4"}},
			{"Observation", "code=http://loinc.org|4548-4&patient=pa", []string{"a1", "a2", "a3"}},
			{"Observation", "code=4548-4&patient=pa", []string{"a1", "a2", "a3", "a5"}},
			{"Observation", "code=urn:local|&patient=pa", []string{"a5"}},
			{"Observation", "code=http://loinc.org|2093-3,urn:local|4548-4", []string{"a4", "a5"}},
			{"Observation", "category=laboratory&status=preliminary", []string{"a4"}},
			{"Observation", "patient=pa&date=2023", []string{"a1", "a2", "a4"}},
			{"Observation", "patient=pa&date=2023-06", []string{"a2", "a4"}},
			{"Observation", "patient=pa&date=2023-06-20", []string{"a2", "a4"}},
			{"Observation", "patient=pa&date=ge2023-06-20", []string{"a2", "a3", "a4"}},
			{"Observation", "patient=pa&date=gt2023-06-20", []string{"a3"}},
			{"Observation", "patient=pa&date=lt2023", []string{"a5"}},
			{"Observation", "patient=pa&date=le2023-01-15", []string{"a1", "a5"}},
			{"Observation", "patient=pa&date=ge2023&date=lt2024", []string{"a1", "a2", "a4"}},
			{"Observation", "patient=pa&date=2023-06-20T07:30:00Z", []string{"a4"}},
			{"Observation", "_id=a1,b1", []string{"a1", "b1"}},
			{"Condition", "patient=pa&clinical-status=active", []string{"c1"}},
			{"Condition", "_security=http://terminology.hl7.org/CodeSystem/v3-ActCode|PSY", []string{"c1"}},
			{"MedicationRequest", "patient=pa&status=active&authoredon=2023-05", []string{"mr1"}},
			{"Observation", "patient=nobody", []string{}},
		} {
			t.Run(tc.typ+"?"+tc.query, func(t *testing.T) {
				got := ids(search(t, s, tc.typ, tc.query).Matches)
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestSearchSortPageIncludeTotal(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s := newStore(t, db)
		seed(t, s)
		if got := ids(search(t, s, "Observation", "patient=pa&_sort=date").Matches); !cmp.Equal(got, []string{"a5", "a1", "a4", "a2", "a3"}) {
			t.Errorf("_sort=date: %v", got)
		}
		if got := ids(search(t, s, "Observation", "patient=pa&_sort=-date").Matches); !cmp.Equal(got, []string{"a3", "a2", "a4", "a1", "a5"}) {
			t.Errorf("_sort=-date: %v", got)
		}
		// Paging: two at a time, following next links, sees every match once.
		var all []string
		query := "patient=pa&_sort=-date&_count=2&_total=accurate"
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("paging does not end")
			}
			page := search(t, s, "Observation", query)
			if *page.Total != 5 {
				t.Errorf("total = %d, want 5", *page.Total)
			}
			all = append(all, ids(page.Matches)...)
			if page.Next == "" {
				break
			}
			query = "patient=pa&_sort=-date&_count=2&_total=accurate&_cursor=" + page.Next
		}
		if diff := cmp.Diff([]string{"a3", "a2", "a4", "a1", "a5"}, all); diff != "" {
			t.Errorf("pages (-want +got):\n%s", diff)
		}
		// The next link of the searchset Bundle carries the query and cursor.
		vals, _ := url.ParseQuery("patient=pa&_count=2")
		q, _ := fhir.ParseQuery("Observation", vals, false)
		page, _ := s.Search(context.Background(), q)
		b := fhir.SearchBundle("https://portal.example/fhir/R4", q, page)
		if len(b.Link) != 2 || !strings.HasPrefix(b.Link[1].URL, "https://portal.example/fhir/R4/Observation?_count=2&_cursor=") ||
			!strings.HasSuffix(b.Link[1].URL, "&patient=pa") {
			t.Errorf("links = %+v", b.Link)
		}
		// _include brings the Medication, marked as included.
		page = search(t, s, "MedicationRequest", "patient=pa&_include=MedicationRequest:medication")
		if diff := cmp.Diff([]string{"mr1"}, ids(page.Matches)); diff != "" {
			t.Errorf("matches (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"med"}, ids(page.Included)); diff != "" {
			t.Errorf("included (-want +got):\n%s", diff)
		}
		// The compartment limit set by the access layer narrows any query.
		q, _ = fhir.ParseQuery("Observation", url.Values{"code": {"4548-4"}}, false)
		q.Compartment = "pb"
		page, _ = s.Search(context.Background(), q)
		if diff := cmp.Diff([]string{"b1"}, ids(page.Matches)); diff != "" {
			t.Errorf("compartment (-want +got):\n%s", diff)
		}
	})
}

func TestSearchBadInput(t *testing.T) {
	for _, tc := range []struct{ typ, query, want string }{
		{"Observation", "colour=red", `search parameter "colour" is not supported for Observation`},
		{"Observation", "code:text=sugar", `search parameter "code:text" is not supported with this modifier`},
		{"Observation", "date=2023-13-01", `date: "2023-13-01" is not a valid date`},
		{"Observation", "date=2023-02-30", `is not a valid date`},
		{"Observation", "date=ne2023", `the prefix "ne" is not supported`},
		{"Observation", "_count=many", "_count must be a whole number"},
		{"Observation", "_sort=status", `_sort: Observation has no date parameter "status"`},
		{"Observation", "_include=Observation:code", `_include: Observation has no reference parameter "code"`},
		{"Observation", "patient=Practitioner/x", "patient refers to Patient only"},
		{"Observation", "_id=a%20b", "not a valid FHIR id"},
		{"Observation", "_total=maybe", "_total must be"},
		{"Nonsense", "", "not a FHIR R4 resource type"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			vals, _ := url.ParseQuery(tc.query)
			_, err := fhir.ParseQuery(tc.typ, vals, false)
			if apperr.CodeOf(err) != apperr.Invalid || !strings.Contains(apperr.MessageOf(err), tc.want) {
				t.Fatalf("err = %v, want invalid with %q", err, tc.want)
			}
		})
	}
	// Prefer: handling=lenient ignores unknown parameters, not bad values.
	vals, _ := url.ParseQuery("colour=red&code:text=x&status=final")
	q, err := fhir.ParseQuery("Observation", vals, true)
	if err != nil || len(q.Clauses) != 1 {
		t.Fatalf("lenient: %v, %d clauses", err, len(q.Clauses))
	}
	vals, _ = url.ParseQuery("colour=red&date=yesterday")
	if _, err := fhir.ParseQuery("Observation", vals, true); err == nil {
		t.Fatal("lenient accepted an invalid date")
	}
	var ue *fhir.UnsupportedParamError
	vals, _ = url.ParseQuery("colour=red")
	if _, err := fhir.ParseQuery("Observation", vals, false); !errors.As(err, &ue) || ue.Param != "colour" {
		t.Errorf("err = %v, want UnsupportedParamError naming colour", err)
	}
}

func TestTransactionBadInputStoresNothing(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s := newStore(t, db)
		ctx := context.Background()
		good := `{"fullUrl":"urn:uuid:11111111-1111-4111-8111-111111111111","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}`
		for _, tc := range []struct{ name, entries, want string }{
			{"unresolvable reference", good + `,{"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:22222222-2222-4222-8222-222222222222"}},"request":{"method":"POST","url":"Observation"}}`,
				"entry 1: reference urn:uuid:22222222-2222-4222-8222-222222222222 is to no entry of this Bundle"},
			{"duplicate fullUrl", good + "," + good, "entry 1: fullUrl repeats the fullUrl of entry 0"},
			{"illegal id", good + `,{"resource":{"resourceType":"Patient","id":"x y"},"request":{"method":"PUT","url":"Patient/x y"}}`, "entry 1:"},
			{"wrong resourceType", good + `,{"resource":{"resourceType":"Patent"},"request":{"method":"POST","url":"Patent"}}`, `entry 1: resourceType "Patent" is not a FHIR R4 resource type`},
			{"resource of another type than its URL", good + `,{"resource":{"resourceType":"Patient","name":[{"family":"x"}]},"request":{"method":"PUT","url":"Observation/1"}}`, "entry 1: request.url names Observation but the resource is a Patient"},
			{"impossible birth date", good + `,{"resource":{"resourceType":"Patient","birthDate":"1944-13-45"},"request":{"method":"POST","url":"Patient"}}`, "entry 1: Patient.birthDate must be a FHIR date"},
			{"not a leap year", good + `,{"resource":{"resourceType":"Patient","birthDate":"2023-02-29"},"request":{"method":"POST","url":"Patient"}}`, "entry 1: Patient.birthDate must be a FHIR date"},
			{"name given as text", good + `,{"resource":{"resourceType":"Patient","name":"x"},"request":{"method":"POST","url":"Patient"}}`, "entry 1: Patient.name must be a JSON object"},
			{"dateTime in a contained resource's extension", good + `,{"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"contained":[{"resourceType":"Patient","id":"c","extension":[{"url":"http://example.org/x","valueDateTime":"2024-06-31"}]}]},"request":{"method":"POST","url":"Observation"}}`,
				"entry 1: Observation.contained[0].extension[0].valueDateTime must be a FHIR dateTime"},
			{"boolean as a string", good + `,{"resource":{"resourceType":"Patient","active":"true"},"request":{"method":"POST","url":"Patient"}}`, "entry 1: Patient.active must be a FHIR boolean"},
			{"conditional reference without match", good + `,{"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient?identifier=urn:mrn|404"}},"request":{"method":"POST","url":"Observation"}}`,
				"entry 1: conditional reference to Patient matches no resource"},
			{"stale If-Match", good + `,{"resource":{"resourceType":"Patient","id":"p"},"request":{"method":"PUT","url":"Patient/p","ifMatch":"W/\"4\""}}`, "entry 1: Patient/p is not at version 4"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				b, err := fhir.ParseBundle(json.RawMessage(`{"resourceType":"Bundle","type":"transaction","entry":[` + tc.entries + `]}`))
				if err != nil {
					t.Fatal(err)
				}
				_, err = s.Process(ctx, b, store.BundleOptions{})
				if err == nil || !strings.Contains(apperr.MessageOf(err), tc.want) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
				}
				if page := search(t, s, "Patient", "_total=accurate"); *page.Total != 0 {
					t.Errorf("a rejected transaction stored %d patients", *page.Total)
				}
				if strings.Contains(err.Error(), "1944-13-45") || strings.Contains(err.Error(), "2024-06-31") {
					t.Errorf("the error quotes the bad value: %v", err)
				}
				oo, status := fhir.OutcomeJSON(err)
				var got struct {
					ResourceType string
					Issue        []struct{ Diagnostics string }
				}
				json.Unmarshal(oo, &got)
				if status/100 != 4 || got.ResourceType != "OperationOutcome" || len(got.Issue) != 1 || !strings.Contains(got.Issue[0].Diagnostics, tc.want) {
					t.Errorf("OperationOutcome = %d %s, want it to name %q", status, oo, tc.want)
				}
			})
		}
	})
}

func TestTransactionResolvesReferences(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s := newStore(t, db)
		ctx := context.Background()
		raw := `{"resourceType":"Bundle","type":"transaction","entry":[
			{"fullUrl":"urn:uuid:aaaaaaaa-0000-4000-8000-000000000001","resource":{"resourceType":"Patient","identifier":[{"system":"urn:mrn","value":"42"}]},"request":{"method":"POST","url":"Patient"}},
			{"fullUrl":"urn:uuid:aaaaaaaa-0000-4000-8000-000000000002","resource":{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"subject":{"reference":"urn:uuid:aaaaaaaa-0000-4000-8000-000000000001"}},"request":{"method":"POST","url":"Encounter"}},
			{"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:aaaaaaaa-0000-4000-8000-000000000001"},"encounter":{"reference":"urn:uuid:aaaaaaaa-0000-4000-8000-000000000002"}},"request":{"method":"POST","url":"Observation"}}]}`
		b, _ := fhir.ParseBundle(json.RawMessage(raw))
		res, err := s.Process(ctx, b, store.BundleOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Response.Type != "transaction-response" || res.Response.Entry[0].Response.Status != "201 Created" ||
			res.Response.Entry[2].Response.Location != "Observation/id-3/_history/1" {
			t.Fatalf("response = %+v %+v", res.Response.Entry[0].Response, res.Response.Entry[2].Response)
		}
		o, err := s.Read(ctx, "Observation", "id-3")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(o.Raw), `"subject":{"reference":"Patient/id-1"}`) || !strings.Contains(string(o.Raw), `"encounter":{"reference":"Encounter/id-2"}`) {
			t.Errorf("references not rewritten: %s", o.Raw)
		}
		// A conditional reference resolves to the one matching resource.
		raw = `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Observation","status":"final","code":{"text":"y"},"subject":{"reference":"Patient?identifier=urn:mrn|42"}},"request":{"method":"POST","url":"Observation"}}]}`
		b, _ = fhir.ParseBundle(json.RawMessage(raw))
		if _, err := s.Process(ctx, b, store.BundleOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := ids(search(t, s, "Observation", "patient=id-1").Matches); len(got) != 2 {
			t.Errorf("patient's observations = %v, want 2", got)
		}
	})
}

func TestBatchReportsEachEntry(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s := newStore(t, db)
		raw := `{"resourceType":"Bundle","type":"batch","entry":[
			{"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},
			{"resource":{"resourceType":"Patient","id":"bad id"},"request":{"method":"PUT","url":"Patient/x"}},
			{"request":{"method":"GET","url":"Patient/id-1"}}]}`
		b, _ := fhir.ParseBundle(json.RawMessage(raw))
		res, err := s.Process(context.Background(), b, store.BundleOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range res.Response.Entry {
			got = append(got, e.Response.Status)
		}
		if diff := cmp.Diff([]string{"201 Created", "400 Bad Request", "200 OK"}, got); diff != "" {
			t.Errorf("statuses (-want +got):\n%s", diff)
		}
		if !strings.Contains(string(res.Response.Entry[1].Response.Outcome), "not a valid FHIR id") {
			t.Errorf("outcome = %s", res.Response.Entry[1].Response.Outcome)
		}
	})
}

// A transaction that writes one resource twice stores two versions and
// indexes only the second.
func TestTransactionWritingOneResourceTwice(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s := newStore(t, db)
		raw := `{"resourceType":"Bundle","type":"transaction","entry":[
			{"resource":{"resourceType":"Observation","id":"x","status":"preliminary","code":{"text":"a"},"subject":{"reference":"Patient/p1"}},"request":{"method":"PUT","url":"Observation/x"}},
			{"resource":{"resourceType":"Observation","id":"x","status":"final","code":{"text":"a"},"subject":{"reference":"Patient/p2"}},"request":{"method":"PUT","url":"Observation/x"}}]}`
		b, _ := fhir.ParseBundle(json.RawMessage(raw))
		res, err := s.Process(context.Background(), b, store.BundleOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Written[0].Resource.VersionID != "1" || res.Written[1].Resource.VersionID != "2" {
			t.Errorf("versions %s, %s; want 1, 2", res.Written[0].Resource.VersionID, res.Written[1].Resource.VersionID)
		}
		if got := ids(search(t, s, "Observation", "patient=p1").Matches); len(got) != 0 {
			t.Errorf("the first version's index survived: %v", got)
		}
		if got := ids(search(t, s, "Observation", "patient=p2&status=final").Matches); !cmp.Equal(got, []string{"x"}) {
			t.Errorf("second version not indexed: %v", got)
		}
		hist, _ := s.History(context.Background(), "Observation", "x")
		if len(hist) != 2 {
			t.Errorf("history has %d versions, want 2", len(hist))
		}
	})
}

// An import keeps the id of a conditional create (Synthea writes its
// Practitioners as POST with ifNoneExist): created under its own id when
// nothing matches, skipped when something does; it once got a new random id.
func TestImportKeepsTheIDOfAConditionalCreate(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s := newStore(t, db)
		ctx := context.Background()
		raw := `{"resourceType":"Bundle","type":"batch","entry":[{"fullUrl":"urn:uuid:0000c0de-0000-4000-8000-000000000001",
			"resource":{"resourceType":"Practitioner","id":"0000c0de-0000-4000-8000-000000000001","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"9999974592"}]},
			"request":{"method":"POST","url":"Practitioner","ifNoneExist":"identifier=http://hl7.org/fhir/sid/us-npi|9999974592"}}]}`
		for round := 1; round <= 2; round++ {
			b, err := fhir.ParseBundle(json.RawMessage(raw))
			if err != nil {
				t.Fatal(err)
			}
			b.Type = "transaction"
			if _, err := s.Process(ctx, b, store.BundleOptions{Import: true}); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			r, err := s.Read(ctx, "Practitioner", "0000c0de-0000-4000-8000-000000000001")
			if err != nil {
				t.Fatalf("round %d: the Practitioner is not under its own id: %v", round, err)
			}
			if r.VersionID != "1" {
				t.Errorf("round %d: version %s, want 1 (the second import matches and skips)", round, r.VersionID)
			}
			if page := search(t, s, "Practitioner", "_total=accurate"); *page.Total != 1 {
				t.Errorf("round %d: %d Practitioners, want 1", round, *page.Total)
			}
		}
	})
}
