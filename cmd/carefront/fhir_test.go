package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The operator commands on both databases: import the fixtures (or a small
// population when CAREFRONT_SYNTHEA_DIR is unset), then read and search.
func TestImportThenReadAndSearch(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := dialectEnv(t, dialect)
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "people.json"), []byte(`{"resourceType":"Bundle","type":"transaction","entry":[
				{"fullUrl":"urn:uuid:6b0f7c2e-0000-4000-8000-000000000001","resource":{"resourceType":"Patient","name":[{"family":"Test"}]},"request":{"method":"POST","url":"Patient"}},
				{"resource":{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"4548-4"}]},"subject":{"reference":"urn:uuid:6b0f7c2e-0000-4000-8000-000000000001"},"effectiveDateTime":"2024-05-01"},"request":{"method":"POST","url":"Observation"}},
				{"resource":{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"4548-4"}]},"subject":{"reference":"urn:uuid:6b0f7c2e-0000-4000-8000-000000000001"},"effectiveDateTime":"2023-05-01"},"request":{"method":"POST","url":"Observation"}}]}`), 0o600)
			var out bytes.Buffer
			if err := run(context.Background(), []string{"carefront", "import", dir}, envOf(env), &out); err != nil {
				t.Fatalf("import: %v\n%s", err, out.String())
			}
			if !strings.Contains(out.String(), "Observation                     2        0          0") || !strings.Contains(out.String(), "1 file(s) read, 0 failed") {
				t.Errorf("import summary:\n%s", out.String())
			}

			out.Reset()
			if err := run(context.Background(), []string{"carefront", "fhir", "read", "Patient/6b0f7c2e-0000-4000-8000-000000000001"}, envOf(env), &out); err != nil {
				t.Fatalf("fhir read: %v", err)
			}
			var p struct {
				ResourceType, ID string
				Meta             struct{ VersionID string }
			}
			if err := json.Unmarshal(out.Bytes(), &p); err != nil || p.ResourceType != "Patient" || p.Meta.VersionID != "1" {
				t.Errorf("fhir read printed %s (%v)", out.String(), err)
			}

			out.Reset()
			err := run(context.Background(), []string{"carefront", "fhir", "search",
				"Observation?patient=6b0f7c2e-0000-4000-8000-000000000001&code=http://loinc.org|4548-4&_sort=-date&_total=accurate"}, envOf(env), &out)
			if err != nil {
				t.Fatalf("fhir search: %v", err)
			}
			var b struct {
				Type  string
				Total int
				Entry []struct {
					Resource struct{ EffectiveDateTime string }
				}
			}
			if err := json.Unmarshal(out.Bytes(), &b); err != nil || b.Type != "searchset" || b.Total != 2 || len(b.Entry) != 2 ||
				b.Entry[0].Resource.EffectiveDateTime != "2024-05-01" {
				t.Errorf("fhir search printed %s (%v)", out.String(), err)
			}
			if strings.Contains(out.String(), `\u0026`) {
				t.Errorf("links are HTML-escaped: %s", out.String())
			}

			// Bad input: one line, non-zero exit, and nothing stored.
			err = run(context.Background(), []string{"carefront", "fhir", "search", "Observation?date=2024-13"}, envOf(env), &out)
			if exitCode(err) != 1 || !strings.Contains(err.Error(), `date: "2024-13" is not a valid date`) {
				t.Errorf("bad date: %v", err)
			}
			err = run(context.Background(), []string{"carefront", "fhir", "read", "Patient/missing"}, envOf(env), &out)
			if exitCode(err) != 1 || !strings.Contains(err.Error(), "Patient/missing is not known") {
				t.Errorf("missing: %v", err)
			}
			os.WriteFile(filepath.Join(dir, "bad.json"), []byte(`{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient","id":"new"},"request":{"method":"PUT","url":"Patient/new"}},{"resource":{"resourceType":"Nope"},"request":{"method":"POST","url":"Nope"}}]}`), 0o600)
			out.Reset()
			err = run(context.Background(), []string{"carefront", "import", dir}, envOf(env), &out)
			if exitCode(err) != 1 || !strings.Contains(out.String(), `bad.json: entry 1: resourceType "Nope" is not a FHIR R4 resource type`) {
				t.Errorf("import of a bad Bundle: %v\n%s", err, out.String())
			}
			if err := run(context.Background(), []string{"carefront", "fhir", "read", "Patient/new"}, envOf(env), &out); err == nil {
				t.Error("the rejected Bundle's Patient was stored")
			}

			// Everything above is in the audit trail, which verifies.
			out.Reset()
			if err := run(context.Background(), []string{"carefront", "audit", "verify"}, envOf(env), &out); err != nil {
				t.Fatalf("audit verify: %v", err)
			}
		})
	}
}
