package importer_test

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"carefront/internal/audit"
	"carefront/internal/clinical/importer"
	"carefront/internal/clinical/store"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

func syntheaDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CAREFRONT_SYNTHEA_DIR")
	if dir == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CAREFRONT_SYNTHEA_DIR is not set on CI; the fixture import test must run")
		}
		t.Skip("CAREFRONT_SYNTHEA_DIR not set")
	}
	return dir
}

// expectedCounts reads the fixtures independently of the importer: the
// number of entries of each resource type in every Bundle.
func expectedCounts(t *testing.T, dir string) map[string]int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in %s: %v", dir, err)
	}
	want := map[string]int{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var b struct {
			Entry []struct {
				Resource struct {
					ResourceType string `json:"resourceType"`
				} `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatal(err)
		}
		for _, e := range b.Entry {
			want[e.Resource.ResourceType]++
		}
	}
	return want
}

func newImporter(t *testing.T, db *sqldb.DB) (*importer.Importer, *audit.Writer, *audit.Signer) {
	t.Helper()
	sig, err := audit.NewSigner(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test", CheckpointEvery: 1000})
	t.Cleanup(func() { aw.Close(context.Background()) })
	return &importer.Importer{Store: store.New(db), Audit: aw}, aw, sig
}

func TestSyntheaFixturesImportExactlyAndIdempotently(t *testing.T) {
	dir := syntheaDir(t)
	want := expectedCounts(t, dir)
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		im, aw, sig := newImporter(t, db)
		sum, err := im.Run(ctx, []string{dir})
		if err != nil {
			t.Fatal(err)
		}
		if len(sum.Failed) > 0 {
			t.Fatalf("failed: %v", sum.Failed)
		}
		// Every entry is counted once; Organizations and Practitioners that
		// several Bundles share are created by the first and unchanged after.
		counted := map[string]int{}
		for typ, c := range sum.ByType {
			counted[typ] = c.Total()
			if c.Updated+c.Deleted > 0 {
				t.Errorf("first import updated or deleted %s: %+v", typ, c)
			}
		}
		if diff := cmp.Diff(want, counted); diff != "" {
			t.Errorf("imported per type (-want +got):\n%s", diff)
		}
		// Again: nothing new.
		sum, err = im.Run(ctx, []string{dir})
		if err != nil || len(sum.Failed) > 0 {
			t.Fatalf("second import: %v %v", err, sum.Failed)
		}
		unchanged := map[string]int{}
		for typ, c := range sum.ByType {
			unchanged[typ] = c.Unchanged
			if c.Created+c.Updated > 0 {
				t.Errorf("second import wrote %s: %+v", typ, c)
			}
		}
		if diff := cmp.Diff(want, unchanged); diff != "" {
			t.Errorf("unchanged per type (-want +got):\n%s", diff)
		}
		// urn:uuid references became ids the store resolves.
		s := store.New(db)
		p, err := s.Read(ctx, "Patient", "d67a0cff-8f7e-46f7-bb99-577a6623e59a")
		if err != nil {
			t.Fatalf("Adolph Smith's Patient: %v", err)
		}
		if p.VersionID != "1" {
			t.Errorf("re-import made version %s", p.VersionID)
		}
		page, err := s.Search(ctx, mustQuery(t, "Observation", "patient=d67a0cff-8f7e-46f7-bb99-577a6623e59a&_total=accurate&_count=0"))
		if err != nil || *page.Total == 0 {
			t.Errorf("no Observations found for the patient (%v): references were not resolved", err)
		}
		// The import is audited and the trail verifies.
		if err := aw.Close(ctx); err != nil {
			t.Fatal(err)
		}
		rep, err := audit.Verify(ctx, db, sig.Trust())
		if err != nil {
			t.Fatalf("audit verify: %v", err)
		}
		if rep.Records < int64(len(want)) {
			t.Errorf("only %d audit records for the import", rep.Records)
		}
	})
}

func mustQuery(t *testing.T, typ, query string) *fhir.Query {
	t.Helper()
	vals, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	q, err := fhir.ParseQuery(typ, vals, false)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBadFilesAreRejectedWholeAndNamed(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		im, _, _ := newImporter(t, db)
		dir := t.TempDir()
		write(t, dir, "a-good.json", `{"resourceType":"Bundle","type":"transaction","entry":[
			{"fullUrl":"urn:uuid:00000000-0000-4000-8000-00000000000a","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}]}`)
		write(t, dir, "b-dangling.json", `{"resourceType":"Bundle","type":"transaction","entry":[
			{"fullUrl":"urn:uuid:00000000-0000-4000-8000-00000000000b","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},
			{"fullUrl":"urn:uuid:00000000-0000-4000-8000-00000000000c","resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:00000000-0000-4000-8000-0000000000ff"}},"request":{"method":"POST","url":"Observation"}}]}`)
		write(t, dir, "c-malformed.json", `{"resourceType":"Bundle","type":"transaction","entry":[`)
		write(t, dir, "d-lines.ndjson", `{"resourceType":"Patient","id":"n1"}`+"\n"+`{"resourceType":"Patient","id":"n 2"}`+"\n")
		write(t, dir, "e-bare.json", `{"resourceType":"Practitioner","id":"dr1"}`)
		write(t, dir, "f-notes.txt", "ignored")
		sum, err := im.Run(ctx, []string{dir})
		if err != nil {
			t.Fatal(err)
		}
		var failed []string
		for _, f := range sum.Failed {
			failed = append(failed, f.Error())
		}
		wantFailed := []string{
			filepath.Join(dir, "b-dangling.json") + ": entry 1: reference urn:uuid:00000000-0000-4000-8000-0000000000ff is to no entry of this Bundle (nothing of this file was stored)",
			filepath.Join(dir, "c-malformed.json") + ": the resource is not valid JSON (it ends too soon) (nothing of this file was stored)",
			filepath.Join(dir, "d-lines.ndjson") + ": line 2: the id of this Patient is not a valid FHIR id (1 to 64 letters, digits, '-' or '.') (nothing of this file was stored)",
		}
		if diff := cmp.Diff(wantFailed, failed); diff != "" {
			t.Errorf("failures (-want +got):\n%s", diff)
		}
		if sum.Files != 5 {
			t.Errorf("files = %d, want 5 (the .txt is skipped)", sum.Files)
		}
		s := store.New(db)
		if _, err := s.Read(ctx, "Patient", "00000000-0000-4000-8000-00000000000a"); err != nil {
			t.Errorf("the good Bundle was not stored: %v", err)
		}
		for _, ref := range [][2]string{{"Patient", "00000000-0000-4000-8000-00000000000b"}, {"Patient", "n1"}} {
			if _, err := s.Read(ctx, ref[0], ref[1]); err == nil {
				t.Errorf("%s/%s of a rejected file was stored", ref[0], ref[1])
			}
		}
		if _, err := s.Read(ctx, "Practitioner", "dr1"); err != nil {
			t.Errorf("bare resource not stored: %v", err)
		}
		if _, err := im.Run(ctx, []string{filepath.Join(dir, "missing")}); err == nil || !strings.Contains(err.Error(), "no such file") {
			t.Errorf("missing path: err = %v", err)
		}
	})
}

func TestOversizedFileIsRejected(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		im, _, _ := newImporter(t, db)
		im.MaxFileBytes = 1024
		dir := t.TempDir()
		big := `{"resourceType":"Patient","id":"big","name":[{"text":"` + strings.Repeat("x", 2000) + `"}]}`
		write(t, dir, "big.json", big)
		sum, err := im.Run(context.Background(), []string{dir})
		if err != nil {
			t.Fatal(err)
		}
		if len(sum.Failed) != 1 || !strings.Contains(sum.Failed[0].Error(), "big.json: larger than 1024 bytes") {
			t.Fatalf("failures = %v", sum.Failed)
		}
		if _, err := store.New(db).Read(context.Background(), "Patient", "big"); err == nil {
			t.Error("the oversized resource was stored")
		}
	})
}

// When the audit chain cannot take a stored Bundle's records, the message
// says what happened: the data was stored, its records are staged with it
// and are chained later (it once said "nothing of them was stored").
func TestStoredButNotYetChainedSaysSo(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		sig, _ := audit.NewSigner(make([]byte, 32))
		aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test"})
		aw.Close(ctx) // the chain is not available
		im := &importer.Importer{Store: store.New(db), Audit: aw}
		dir := t.TempDir()
		write(t, dir, "p.json", `{"resourceType":"Patient","id":"kept"}`)
		sum, err := im.Run(ctx, []string{dir})
		if err != nil {
			t.Fatal(err)
		}
		if len(sum.Failed) != 1 || !strings.Contains(sum.Failed[0].Error(), "p.json: stored, with its audit records staged") {
			t.Fatalf("failures = %v, want one saying the file was stored", sum.Failed)
		}
		if _, err := store.New(db).Read(ctx, "Patient", "kept"); err != nil {
			t.Errorf("the Patient is not stored: %v", err)
		}
		aw2 := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test"})
		if err := aw2.Close(ctx); err != nil {
			t.Fatal(err)
		}
		rep, err := audit.Verify(ctx, db, sig.Trust())
		if err != nil || rep.Records != 1 {
			t.Errorf("after a restart: Verify = %+v, %v; want the staged record chained", rep, err)
		}
	})
}
