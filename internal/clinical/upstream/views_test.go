package upstream_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"carefront/internal/access"
	"carefront/internal/audit"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/clinical/upstream"
	"carefront/internal/demo"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
	"carefront/internal/views"
)

// TestRecordViewsFromAnEHRWithOneServiceStuck: in upstream mode the views
// read the EHR through the gateway; when the EHR's appointment searches
// time out, the home page shows everything else and says the appointments
// could not be loaded, and the view's audit record says it failed.
func TestRecordViewsFromAnEHRWithOneServiceStuck(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	e := newEHR(t, db, key.Public(), jose.ES384)
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	bundle, err := demo.Bundle(now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Process(context.Background(), bundle, store.BundleOptions{Import: true}); err != nil {
		t.Fatal(err)
	}
	c, err := upstream.New(upstream.Options{BaseURL: e.srv.URL + "/fhir", Backend: &upstream.Backend{ClientID: "carefront", Key: key, KeyID: "k1"},
		Timeout: 300 * time.Millisecond, Retries: -1, BreakAfter: 100})
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := audit.NewSigner(make([]byte, 32))
	aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test", CheckpointEvery: 1000})
	t.Cleanup(func() { aw.Close(context.Background()) })
	dict, _ := views.LoadDictionary("")
	clock := func() time.Time { return now }
	gw := &clinical.Gateway{Source: c, Audit: aw, Policies: &access.Store{DB: db, Audit: aw}, Now: clock}
	b := &views.Builder{Gateway: gw, Dict: dict, Now: clock}
	req := clinical.Request{Principal: access.Principal{User: "Person/m", Patient: demo.Maria}}
	ctx := context.Background()

	h, err := b.Home(ctx, req, views.HomeInput{Lang: "en", Passkeys: 1, RecoveryCodesLeft: 10})
	if err != nil {
		t.Fatal(err)
	}
	if h.Next == nil || !h.Next.Video || len(h.Medications) != 4 || len(h.Goals) != 2 || len(h.Unavailable) != 0 {
		t.Fatalf("home from the EHR: next %+v, %d medications, %d goals, unavailable %v", h.Next, len(h.Medications), len(h.Goals), h.Unavailable)
	}

	e.slowFor = 2 * time.Second
	e.slowType.Store("Appointment")
	start := time.Now()
	h, err = b.Home(ctx, req, views.HomeInput{Lang: "en", Passkeys: 1, RecoveryCodesLeft: 10})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("home waited %v for the stuck service", took) // bounded by the upstream timeout, not the EHR
	}
	if !slices.Equal(h.Unavailable, []views.Block{views.BlockAppointments}) || h.Next != nil || len(h.Medications) != 4 || len(h.Goals) != 2 || len(h.NewResults) == 0 {
		t.Errorf("home with appointments stuck: unavailable %v, next %v, %d medications, %d goals, %d results",
			h.Unavailable, h.Next, len(h.Medications), len(h.Goals), len(h.NewResults))
	}
	var outcome string
	if err := db.Read(ctx, func(tx *sqldb.Tx) error {
		return tx.QueryRow(ctx, "SELECT outcome FROM audit_event ORDER BY seq DESC LIMIT 1").Scan(&outcome)
	}); err != nil {
		t.Fatal(err)
	}
	if outcome != "8" {
		t.Errorf("the partial home is audited with outcome %s, want 8 (serious failure)", outcome)
	}
	// A page that cannot show anything without the stuck service fails
	// with an error whose text (which reaches the log) names neither the
	// patient nor what was asked.
	e.slowType.Store("Observation")
	if _, err := b.Results(ctx, req, views.ResultsOptions{Lang: "en"}); !clinical.IsUnavailable(err) {
		t.Errorf("results with observations stuck: %v", err)
	} else if strings.Contains(err.Error(), demo.Maria) || strings.Contains(err.Error(), "Observation?") {
		t.Errorf("the error carries the request: %v", err)
	}
	e.slowType.Store("Appointment")
	// Visits, which need the appointments, say so too; the summary does not.
	v, err := b.Visits(ctx, req, "en")
	if err != nil || !slices.Contains(v.Unavailable, views.BlockAppointments) || len(v.Past) == 0 {
		t.Errorf("visits with appointments stuck: %v %v", v, err)
	}
}
