package importer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"carefront/internal/clinical/importer"
	"carefront/internal/clinical/store"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// Synthea writes these identifier systems into the conditional references
// of a bulk export (Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|N).
const (
	npi         = "http://hl7.org/fhir/sid/us-npi"
	syntheaSys  = "https://github.com/synthetichealth/synthea"
	exportStart = "2024-05-01T10:00:00.000Z"
)

// bulkExport is a SMART Bulk Data export folder made of the Synthea fixture
// Bundles, and what importing it must give.
type bulkExport struct {
	dir   string
	files int            // files written, log.ndjson included
	want  map[string]int // resources per type
	// One Encounter, and the ids its conditional references must resolve to.
	encounter, practitioner, organization string
	// Encounters per Organization id of their serviceProvider.
	encountersOf map[string]int
}

// writeBulkExport rewrites the fixture Bundles of src as Synthea's bulk
// export writes them: one Type.000.ndjson per resource type, each resource
// once (Bundles share Organizations and Practitioners) on one line, with
// Bundle-internal urn:uuid references made Type/id (the id the importer
// keeps: the resource's own, else X of its urn:uuid:X fullUrl), references
// to Practitioners and Organizations made conditional on their identifier
// as Synthea writes them, and the export's log.ndjson beside them. The
// fixtures come from a Synthea that put Practitioners and Organizations
// inside each Bundle, so their conditional references are made here from
// the identifiers Synthea gives them.
func writeBulkExport(t *testing.T, src string) *bulkExport {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(src, "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures in %s: %v", src, err)
	}
	sort.Strings(paths)
	ex := &bulkExport{dir: t.TempDir(), want: map[string]int{}, encountersOf: map[string]int{}}
	lines := map[string][][]byte{}
	seen := map[string]bool{}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var b struct {
			Entry []struct {
				FullURL  string         `json:"fullUrl"`
				Resource map[string]any `json:"resource"`
			} `json:"entry"`
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber() // numbers stay as written
		if err := dec.Decode(&b); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		to := map[string]string{}   // fullUrl -> reference in the export
		idOf := map[string]string{} // fullUrl -> Type/id
		for _, e := range b.Entry {
			r := e.Resource
			typ, _ := r["resourceType"].(string)
			id, _ := r["id"].(string)
			if id == "" {
				id = strings.TrimPrefix(e.FullURL, "urn:uuid:")
				r["id"] = id
			}
			idOf[e.FullURL] = typ + "/" + id
			to[e.FullURL] = typ + "/" + id
			if typ == "Practitioner" || typ == "Organization" {
				to[e.FullURL] = typ + "?identifier=" + identifier(t, r)
			}
		}
		for _, e := range b.Entry {
			r := e.Resource
			typ, id := r["resourceType"].(string), r["id"].(string)
			if typ == "Encounter" {
				if org := refOf(r["serviceProvider"]); org != "" {
					ex.encountersOf[strings.TrimPrefix(idOf[org], "Organization/")]++
				}
				if ex.encounter == "" {
					if parts, _ := r["participant"].([]any); len(parts) > 0 {
						part, _ := parts[0].(map[string]any)
						ex.encounter = id
						ex.practitioner = strings.TrimPrefix(idOf[refOf(part["individual"])], "Practitioner/")
						ex.organization = strings.TrimPrefix(idOf[refOf(r["serviceProvider"])], "Organization/")
					}
				}
			}
			rewriteRefs(r, to)
			if seen[typ+"/"+id] {
				continue
			}
			seen[typ+"/"+id] = true
			line, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			lines[typ] = append(lines[typ], line)
			ex.want[typ]++
		}
	}
	if ex.encounter == "" || ex.practitioner == "" || ex.organization == "" {
		t.Fatalf("no Encounter with a participant and a serviceProvider in the fixtures")
	}
	var log bytes.Buffer
	logLine := func(event string, detail map[string]any) {
		line, _ := json.Marshal(map[string]any{"exportId": "7a1e0b9c", "timestamp": exportStart, "eventId": event, "eventDetail": detail})
		log.Write(append(line, '\n'))
	}
	logLine("kickoff", map[string]any{"exportUrl": "https://synthea.example/fhir/$export", "errorCode": nil, "requestParameters": map[string]any{"_outputFormat": "application/fhir+ndjson"}})
	logLine("status_complete", map[string]any{"transactionTime": exportStart})
	logLine("manifest_complete", map[string]any{"transactionTime": exportStart, "totalOutputFileCount": len(lines), "totalErrorFileCount": 0})
	for typ, ls := range lines {
		name := typ + ".000.ndjson"
		write(t, ex.dir, name, string(bytes.Join(ls, []byte("\n")))+"\n")
		url := "https://synthea.example/fhir/bulkfiles/" + name
		// A log line names a resourceType, but inside eventDetail.
		logLine("download_request", map[string]any{"fileUrl": url, "itemType": "output", "resourceType": typ})
		logLine("download_complete", map[string]any{"fileUrl": url, "resourceCount": len(ls)})
	}
	logLine("export_complete", map[string]any{"files": len(lines), "resources": len(seen), "duration": 1234})
	write(t, ex.dir, "log.ndjson", log.String())
	ex.files = len(lines) + 1
	return ex
}

// identifier is "system|value" of the identifier a conditional reference
// to r names: the NPI of a Practitioner, Synthea's own of an Organization.
func identifier(t *testing.T, r map[string]any) string {
	t.Helper()
	want := syntheaSys
	if r["resourceType"] == "Practitioner" {
		want = npi
	}
	ids, _ := r["identifier"].([]any)
	for _, i := range ids {
		i, _ := i.(map[string]any)
		if i["system"] == want {
			return want + "|" + i["value"].(string)
		}
	}
	t.Fatalf("%s/%s has no %s identifier", r["resourceType"], r["id"], want)
	return ""
}

func refOf(v any) string {
	m, _ := v.(map[string]any)
	s, _ := m["reference"].(string)
	return s
}

// rewriteRefs replaces every Reference.reference of v found in to.
func rewriteRefs(v any, to map[string]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "reference" {
				if n, ok := to[s]; ok {
					v[k] = n
				}
				continue
			}
			rewriteRefs(x, to)
		}
	case []any:
		for _, x := range v {
			rewriteRefs(x, to)
		}
	}
}

// A clinic imports a Synthea bulk export folder as it comes: Encounter,
// Claim and the rest sort before the Practitioner and Organization files
// their conditional references name, and the export's log.ndjson holds no
// resources. Every resource is stored, the references resolve, the log is
// skipped with a line saying so, and importing again changes nothing.
func TestSyntheaBulkExportFolderImports(t *testing.T) {
	ex := writeBulkExport(t, syntheaDir(t))
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		im, _, _ := newImporter(t, db)
		sum, err := im.Run(ctx, []string{ex.dir})
		if err != nil {
			t.Fatal(err)
		}
		if len(sum.Failed) > 0 {
			t.Fatalf("failed: %v", sum.Failed)
		}
		wantSkipped := []string{filepath.Join(ex.dir, "log.ndjson") + ": a bulk export log, not FHIR resources"}
		if diff := cmp.Diff(wantSkipped, sum.Skipped); diff != "" {
			t.Errorf("skipped (-want +got):\n%s", diff)
		}
		if sum.Files != ex.files {
			t.Errorf("files = %d, want %d", sum.Files, ex.files)
		}
		created := map[string]int{}
		for typ, c := range sum.ByType {
			created[typ] = c.Created
			if c.Updated+c.Unchanged+c.Deleted > 0 {
				t.Errorf("first import of %s: %+v, want only created", typ, c)
			}
		}
		if diff := cmp.Diff(ex.want, created); diff != "" {
			t.Errorf("created per type (-want +got):\n%s", diff)
		}

		// The conditional references now name the resources.
		s := store.New(db)
		enc, err := s.Read(ctx, "Encounter", ex.encounter)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Participant []struct {
				Individual struct{ Reference string }
			}
			ServiceProvider struct{ Reference string }
		}
		if err := json.Unmarshal(enc.Raw, &e); err != nil {
			t.Fatal(err)
		}
		if got, want := e.Participant[0].Individual.Reference, "Practitioner/"+ex.practitioner; got != want {
			t.Errorf("Encounter/%s participant = %q, want %q", ex.encounter, got, want)
		}
		if got, want := e.ServiceProvider.Reference, "Organization/"+ex.organization; got != want {
			t.Errorf("Encounter/%s serviceProvider = %q, want %q", ex.encounter, got, want)
		}
		// ... in every Encounter, as search finds them by it.
		for org, n := range ex.encountersOf {
			page, err := s.Search(ctx, mustQuery(t, "Encounter", "service-provider=Organization/"+org+"&_total=accurate&_count=0"))
			if err != nil {
				t.Fatal(err)
			}
			if *page.Total != n {
				t.Errorf("Encounters of Organization/%s = %d, want %d", org, *page.Total, n)
			}
		}
		page, err := s.Search(ctx, mustQuery(t, "Observation", "patient=d67a0cff-8f7e-46f7-bb99-577a6623e59a&_total=accurate&_count=0"))
		if err != nil || *page.Total == 0 {
			t.Errorf("no Observations found for the patient (%v): Patient/id references do not resolve", err)
		}

		// Again: the references resolve to the same resources.
		sum, err = im.Run(ctx, []string{ex.dir})
		if err != nil || len(sum.Failed) > 0 {
			t.Fatalf("second import: %v %v", err, sum.Failed)
		}
		unchanged := map[string]int{}
		for typ, c := range sum.ByType {
			unchanged[typ] = c.Unchanged
		}
		if diff := cmp.Diff(ex.want, unchanged); diff != "" {
			t.Errorf("second import unchanged per type (-want +got):\n%s", diff)
		}
	})
}

// refsOf reads the references of a stored resource at the given paths
// (field names separated by dots; the first element of an array).
func refsOf(t *testing.T, s *store.Store, typ, id string, paths ...string) []string {
	t.Helper()
	r, err := s.Read(context.Background(), typ, id)
	if err != nil {
		t.Fatalf("%s/%s: %v", typ, id, err)
	}
	var v map[string]any
	if err := json.Unmarshal(r.Raw, &v); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range paths {
		var x any = v
		for _, f := range strings.Split(p, ".") {
			if a, ok := x.([]any); ok && len(a) > 0 {
				x = a[0]
			}
			m, _ := x.(map[string]any)
			x = m[f]
		}
		if a, ok := x.([]any); ok && len(a) > 0 {
			x = a[0]
		}
		out = append(out, refOf(x))
	}
	return out
}

// The files of a set are imported whatever their names and order: the
// Encounter file sorts first, a Location names its Organization, an
// Organization its parent in a later file of the same type, and a patient
// Bundle (.json) a Practitioner of a Bundle that sorts after it, as
// Synthea's practitionerInformation.json does.
func TestSetImportsWhateverTheOrder(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		im, _, _ := newImporter(t, db)
		dir := t.TempDir()
		write(t, dir, "1.ndjson", `{"resourceType":"Encounter","id":"e1","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/p1"},`+
			`"participant":[{"individual":{"reference":"Practitioner?identifier=`+npi+`|9999974592"}}],`+
			`"location":[{"location":{"reference":"Location?identifier=`+syntheaSys+`|loc1"}}],`+
			`"serviceProvider":{"reference":"Organization?identifier=`+syntheaSys+`|org-child"}}`+"\n")
		write(t, dir, "2.ndjson", `{"resourceType":"Location","id":"loc1","identifier":[{"system":"`+syntheaSys+`","value":"loc1"}],"managingOrganization":{"reference":"Organization?identifier=`+syntheaSys+`|org-parent"}}`+"\n")
		write(t, dir, "3.ndjson", `{"resourceType":"Practitioner","id":"dr1","identifier":[{"system":"`+npi+`","value":"9999974592"}]}`+"\n")
		write(t, dir, "4.ndjson", `{"resourceType":"Organization","id":"org-child","identifier":[{"system":"`+syntheaSys+`","value":"org-child"}],"partOf":{"reference":"Organization?identifier=`+syntheaSys+`|org-parent"}}`+"\n")
		write(t, dir, "5.ndjson", `{"resourceType":"Organization","id":"org-parent","identifier":[{"system":"`+syntheaSys+`","value":"org-parent"}]}`+"\n")
		write(t, dir, "6.ndjson", `{"resourceType":"Patient","id":"p1","generalPractitioner":[{"reference":"Practitioner?identifier=`+npi+`|9999974592"}]}`+"\n")
		write(t, dir, "a-patient.json", `{"resourceType":"Bundle","type":"transaction","entry":[
			{"fullUrl":"urn:uuid:00000000-0000-4000-8000-0000000000a2","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},
			{"fullUrl":"urn:uuid:00000000-0000-4000-8000-0000000000e2","resource":{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},
				"subject":{"reference":"urn:uuid:00000000-0000-4000-8000-0000000000a2"},
				"participant":[{"individual":{"reference":"Practitioner?identifier=`+npi+`|9999999999"}}]},"request":{"method":"POST","url":"Encounter"}}]}`)
		write(t, dir, "b-practitioners.json", `{"resourceType":"Bundle","type":"batch","entry":[
			{"fullUrl":"urn:uuid:00000000-0000-4000-8000-0000000000d2","resource":{"resourceType":"Practitioner","identifier":[{"system":"`+npi+`","value":"9999999999"}]},"request":{"method":"POST","url":"Practitioner"}}]}`)
		sum, err := im.Run(ctx, []string{dir})
		if err != nil {
			t.Fatal(err)
		}
		if len(sum.Failed) > 0 {
			t.Fatalf("failed: %v", sum.Failed)
		}
		created := map[string]int{}
		for typ, c := range sum.ByType {
			created[typ] = c.Total()
		}
		if diff := cmp.Diff(map[string]int{"Encounter": 2, "Location": 1, "Organization": 2, "Patient": 2, "Practitioner": 2}, created); diff != "" {
			t.Errorf("imported per type (-want +got):\n%s", diff)
		}
		s := store.New(db)
		for _, tt := range []struct {
			typ, id string
			paths   []string
			want    []string
		}{
			{"Encounter", "e1", []string{"participant.individual", "location.location", "serviceProvider"},
				[]string{"Practitioner/dr1", "Location/loc1", "Organization/org-child"}},
			{"Location", "loc1", []string{"managingOrganization"}, []string{"Organization/org-parent"}},
			{"Organization", "org-child", []string{"partOf"}, []string{"Organization/org-parent"}},
			{"Patient", "p1", []string{"generalPractitioner"}, []string{"Practitioner/dr1"}},
			{"Encounter", "00000000-0000-4000-8000-0000000000e2", []string{"participant.individual"},
				[]string{"Practitioner/00000000-0000-4000-8000-0000000000d2"}},
		} {
			if diff := cmp.Diff(tt.want, refsOf(t, s, tt.typ, tt.id, tt.paths...)); diff != "" {
				t.Errorf("%s/%s references (-want +got):\n%s", tt.typ, tt.id, diff)
			}
		}
	})
}

// auditFailures counts the audit records of failed imports.
func auditFailures(t *testing.T, db *sqldb.DB) int {
	t.Helper()
	var n int
	err := db.Read(context.Background(), func(tx *sqldb.Tx) error {
		return tx.QueryRow(context.Background(), "SELECT COUNT(*) FROM audit_event WHERE outcome = ?", "4").Scan(&n)
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// An .ndjson file deferred for a conditional reference resumes at the chunk
// that waited, without storing its earlier chunks again; a reference that
// nothing in the set resolves fails its chunk after the rest was imported,
// saying which lines were stored, and is audited as one failure.
func TestWaitingChunkResumesAndUnresolvedFails(t *testing.T) {
	org := func(id, partOf string) string {
		s := `{"resourceType":"Organization","id":"` + id + `","identifier":[{"system":"` + syntheaSys + `","value":"` + id + `"}]`
		if partOf != "" {
			s += `,"partOf":{"reference":"Organization?identifier=` + syntheaSys + `|` + partOf + `"}`
		}
		return s + "}\n"
	}
	const chunk = 500 // importer.ndjsonChunk
	orgs := func(prefix string, n int) string {
		var b strings.Builder
		for i := range n {
			b.WriteString(org(fmt.Sprintf("%s%d", prefix, i), ""))
		}
		return b.String()
	}
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		im, aw, _ := newImporter(t, db)
		dir := t.TempDir()
		write(t, dir, "b.ndjson", orgs("b", chunk)+org("b-child", "c-parent"))
		write(t, dir, "c.ndjson", org("c-parent", ""))
		write(t, dir, "d.ndjson", orgs("d", chunk)+org("d-orphan", "nobody"))
		sum, err := im.Run(ctx, []string{dir})
		if err != nil {
			t.Fatal(err)
		}
		var failed []string
		for _, f := range sum.Failed {
			failed = append(failed, f.Error())
		}
		wantFailed := []string{filepath.Join(dir, "d.ndjson") + ": lines 501 to 501: entry 0: conditional reference to Organization matches no resource (these lines were not stored; lines 1 to 500 were stored)"}
		if diff := cmp.Diff(wantFailed, failed); diff != "" {
			t.Errorf("failures (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]*importer.Counts{"Organization": {Created: 2*chunk + 2}}, sum.ByType); diff != "" {
			t.Errorf("counts (-want +got):\n%s", diff)
		}
		if got := refsOf(t, store.New(db), "Organization", "b-child", "partOf"); got[0] != "Organization/c-parent" {
			t.Errorf("b-child partOf = %q, want Organization/c-parent", got[0])
		}
		if _, err := store.New(db).Read(ctx, "Organization", "d-orphan"); err == nil {
			t.Error("d-orphan was stored with an unresolved reference")
		}
		if err := aw.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if n := auditFailures(t, db); n != 1 {
			t.Errorf("%d failed-import audit records, want 1 (deferred attempts are no failures)", n)
		}
	})
}

// A bulk export's log and error files are skipped, each with a line saying
// why; a file of resources with a line of garbage still fails whole, and so
// does one that mixes log lines and resources.
func TestBulkExportLogAndErrorsAreSkipped(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		im, _, _ := newImporter(t, db)
		dir := t.TempDir()
		logLine := `{"exportId":"x1","timestamp":"` + exportStart + `","eventId":"status_complete","eventDetail":{"transactionTime":"` + exportStart + `"}}`
		write(t, dir, "log.ndjson", logLine+"\n\n"+
			`{"exportId":"x1","timestamp":"`+exportStart+`","eventId":"download_request","eventDetail":{"fileUrl":"https://x/Patient.000.ndjson","itemType":"output","resourceType":"Patient"}}`+"\n")
		write(t, dir, "OperationOutcome.000.ndjson", `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing","diagnostics":"Patient/gone not found"}]}`+"\n"+
			`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing"}]}`+"\n")
		write(t, dir, "Patient.000.ndjson", `{"resourceType":"Patient","id":"kept"}`+"\n")
		write(t, dir, "Patient.001.ndjson", `{"resourceType":"Patient","id":"not-kept"}`+"\n"+`{"resourceType":"Patient","id":`+"\n")
		write(t, dir, "mixed.ndjson", logLine+"\n"+`{"resourceType":"Patient","id":"mixed"}`+"\n")
		sum, err := im.Run(ctx, []string{dir})
		if err != nil {
			t.Fatal(err)
		}
		wantSkipped := []string{
			filepath.Join(dir, "OperationOutcome.000.ndjson") + ": the 2 OperationOutcome(s) of a bulk export's errors, not data to store",
			filepath.Join(dir, "log.ndjson") + ": a bulk export log, not FHIR resources",
		}
		if diff := cmp.Diff(wantSkipped, sum.Skipped); diff != "" {
			t.Errorf("skipped (-want +got):\n%s", diff)
		}
		var failed []string
		for _, f := range sum.Failed {
			failed = append(failed, f.Error())
		}
		wantFailed := []string{
			filepath.Join(dir, "Patient.001.ndjson") + ": line 2: the resource is not valid JSON (it ends too soon) (nothing of this file was stored)",
			filepath.Join(dir, "mixed.ndjson") + ": line 1: the resource has no resourceType (nothing of this file was stored)",
		}
		if diff := cmp.Diff(wantFailed, failed); diff != "" {
			t.Errorf("failures (-want +got):\n%s", diff)
		}
		if sum.Files != 5 {
			t.Errorf("files = %d, want 5", sum.Files)
		}
		if diff := cmp.Diff(map[string]*importer.Counts{"Patient": {Created: 1}}, sum.ByType); diff != "" {
			t.Errorf("counts (-want +got):\n%s", diff)
		}
	})
}
