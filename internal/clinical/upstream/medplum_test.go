package upstream_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/clinical"
	"carefront/internal/clinical/upstream"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// startMedplum runs testdata/medplum/server.mjs, an independent FHIR
// server, and returns its base URL. It needs Node.js and `npm ci` in that
// folder (.ci/run does it); CI fails rather than skips without them.
func startMedplum(t *testing.T, token string, delayMS int) string {
	t.Helper()
	dir, _ := filepath.Abs("testdata/medplum")
	missing := func(why string) {
		if os.Getenv("CI") != "" {
			t.Fatalf("the Medplum FHIR server cannot run: %s", why)
		}
		t.Skipf("the Medplum FHIR server cannot run: %s", why)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@medplum", "fhir-router")); err != nil {
		missing("run npm ci in internal/clinical/upstream/testdata/medplum")
	}
	cmd := exec.Command(node, "server.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "UPSTREAM_TOKEN="+token, fmt.Sprintf("UPSTREAM_DELAY_MS=%d", delayMS))
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ready := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m struct{ Port int }
			if json.Unmarshal(sc.Bytes(), &m) == nil && m.Port > 0 {
				ready <- m.Port
				return
			}
		}
	}()
	select {
	case port := <-ready:
		return fmt.Sprintf("http://127.0.0.1:%d/fhir", port)
	case <-time.After(60 * time.Second):
		t.Fatalf("the Medplum server did not start: %s", stderr.String())
	}
	return ""
}

func put(t *testing.T, base, token, body string) {
	t.Helper()
	var r struct {
		ResourceType, ID string
	}
	json.Unmarshal([]byte(body), &r)
	req, _ := http.NewRequest(http.MethodPut, base+"/"+r.ResourceType+"/"+r.ID, bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/fhir+json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("PUT %s/%s: %d", r.ResourceType, r.ID, resp.StatusCode)
	}
}

func TestAgainstMedplumFHIRServer(t *testing.T) {
	const token = "medplum-test-token"
	base := startMedplum(t, token, 0)
	put(t, base, token, `{"resourceType":"Patient","id":"pa","name":[{"family":"A"}]}`)
	put(t, base, token, `{"resourceType":"Patient","id":"pb","name":[{"family":"B"}]}`)
	put(t, base, token, `{"resourceType":"Medication","id":"m1","code":{"text":"metformin"}}`)
	for i, p := range []string{"pa", "pa", "pa", "pb"} {
		put(t, base, token, fmt.Sprintf(`{"resourceType":"Observation","id":"o%d","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"4548-4"}]},"subject":{"reference":"Patient/%s"},"effectiveDateTime":"2024-0%d-01","_status":{"extension":[{"url":"https://carefront.example/x","valueString":"kept"}]}}`, i+1, p, 4-i))
	}
	put(t, base, token, `{"resourceType":"MedicationRequest","id":"mr1","status":"active","intent":"order","subject":{"reference":"Patient/pa"},"medicationReference":{"reference":"Medication/m1"}}`)

	c, err := upstream.New(upstream.Options{BaseURL: base, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := c.Read(ctx, "Observation", "o1")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(r.Raw, []byte(`"valueString":"kept"`)) {
		t.Errorf("primitive extension lost: %s", r.Raw)
	}
	if _, err := c.Read(ctx, "Observation", "missing"); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("missing: %v", err)
	}
	q := query(t, "Observation", "code=http://loinc.org|4548-4&_sort=date")
	q.Compartment = "pa"
	page, err := c.Search(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"o3", "o2", "o1"}, ids(page.Matches)); diff != "" {
		t.Errorf("compartment search sorted by date (-want +got):\n%s", diff)
	}
	page, err = c.Search(ctx, query(t, "MedicationRequest", "_include=MedicationRequest:medication"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"m1"}, ids(page.Included)); diff != "" {
		t.Errorf("included (-want +got):\n%s", diff)
	}

	// Through the gateway, patient A sees their own data only, whatever
	// the upstream returns.
	gw := gateway(t, c)
	pa := clinical.Request{Principal: access.Principal{User: "Patient/pa", Patient: "pa"}, RequestID: "r1"}
	page, err = gw.Search(ctx, pa, query(t, "Observation", "_sort=date"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"o3", "o2", "o1"}, ids(page.Matches)); diff != "" {
		t.Errorf("gateway search (-want +got):\n%s", diff)
	}
	if _, err := gw.Read(ctx, pa, "Observation", "o4"); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("another patient's Observation through the gateway: %v", err)
	}
}

func gateway(t *testing.T, src clinical.Source) *clinical.Gateway {
	t.Helper()
	db := sqldbtest.Open(t, sqldb.SQLite)
	sig, _ := audit.NewSigner(make([]byte, 32))
	aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test", CheckpointEvery: 100})
	t.Cleanup(func() { aw.Close(context.Background()) })
	return &clinical.Gateway{Source: src, Audit: aw}
}

func TestSlowMedplumIsUnavailableThroughTheGateway(t *testing.T) {
	base := startMedplum(t, "", 500)
	c, _ := upstream.New(upstream.Options{BaseURL: base, Timeout: 100 * time.Millisecond, Retries: -1})
	gw := gateway(t, c)
	_, err := gw.Search(context.Background(), clinical.Request{Principal: access.Principal{User: "Patient/pa", Patient: "pa"}}, query(t, "Observation", ""))
	if !clinical.IsUnavailable(err) {
		t.Fatalf("err = %v, want the typed unavailable error", err)
	}
}
