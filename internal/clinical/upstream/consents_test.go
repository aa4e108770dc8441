package upstream_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/audit/audittest"
	"carefront/internal/clinical"
	"carefront/internal/clinical/upstream"
	"carefront/internal/consent"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// TestConsentsKeptByTheEHRBindThePortal: in upstream mode, a privacy
// Consent the health system records (here: no one but the patient sees
// lab results) refuses a caregiver the portal would otherwise let in,
// within the TTL of the EHR's last answer; the patient still sees them.
func TestConsentsKeptByTheEHRBindThePortal(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		e := newEHR(t, db, key.Public(), jose.ES384)
		seed(t, e.st)
		c, err := upstream.New(upstream.Options{BaseURL: e.srv.URL + "/fhir", Backend: &upstream.Backend{ClientID: "carefront", Key: key, KeyID: "k1"}})
		if err != nil {
			t.Fatal(err)
		}
		sig, _ := audit.NewSigner(make([]byte, 32))
		aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test"})
		t.Cleanup(func() { aw.Close(ctx) })
		var now atomic.Int64
		now.Store(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC).UnixNano())
		clock := func() time.Time { return time.Unix(0, now.Load()).UTC() }
		gw := &clinical.Gateway{Source: c, Audit: aw, Policies: &access.Store{DB: db}, Now: clock,
			Consents: &consent.EHRConsents{EHR: c, Now: clock}}
		caregiver := clinical.Request{Principal: access.Principal{User: "Person/c", Patient: "pa",
			Proxy: &access.Proxy{Account: "Person/c", Until: clock().AddDate(1, 0, 0)}}}
		patient := clinical.Request{Principal: access.Principal{User: "Person/pa", Patient: "pa"}}

		if _, err := gw.Read(ctx, caregiver, "Observation", "pa-o1"); err != nil {
			t.Fatalf("before the EHR's consent: %v", err)
		}
		// The clinic records the patient's wish in the EHR.
		consentJSON := `{"resourceType":"Consent","status":"active","dateTime":"2026-11-29T12:00:00Z",
			"scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},
			"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":{"reference":"Patient/pa"},
			"provision":{"type":"deny","class":[{"system":"http://hl7.org/fhir/resource-types","code":"Observation"}]}}`
		if _, err := e.st.Create(ctx, []byte(consentJSON)); err != nil {
			t.Fatal(err)
		}
		if _, err := gw.Read(ctx, caregiver, "Observation", "pa-o1"); err != nil {
			t.Errorf("within the TTL of the EHR's last answer: %v", err)
		}
		now.Add(int64(consent.DefaultEHRConsentTTL))
		if _, err := gw.Read(ctx, caregiver, "Observation", "pa-o1"); apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("after the TTL the caregiver still reads the result: %v", err)
		}
		if outcome, _, ev := audittest.Last(t, db); outcome != string(audit.MinorFailure) || !strings.Contains(ev, access.ReasonConsentDenied) {
			t.Errorf("refusal audited as %s %s", outcome, ev)
		}
		// The EHR's consent keeps an id of its own kind.
		if pol, err := gw.Consents.Merge(ctx, "pa", nil); err != nil || len(pol.Consents) != 1 || !strings.HasPrefix(pol.Consents[0].ID, "ehr:") {
			t.Errorf("merged policy: %+v, %v", pol, err)
		}
		if _, err := gw.Read(ctx, caregiver, "Patient", "pa"); err != nil {
			t.Errorf("what the consent does not name: %v", err)
		}
		if _, err := gw.Read(ctx, patient, "Observation", "pa-o1"); err != nil {
			t.Errorf("the patient's own result: %v", err)
		}
	})
}

// TestEHRWithoutConsents: an EHR that does not offer Consent search has
// none to apply; one that cannot answer is replaced by its last good
// answer for a while, then fails the request rather than deciding
// without them; the patient's own record never asks.
func TestEHRWithoutConsents(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	ctx := context.Background()
	var status, calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/fhir/Consent") {
			calls.Add(1)
			if s := int(status.Load()); s != http.StatusOK {
				w.WriteHeader(s)
				return
			}
			w.Write([]byte(`{"resourceType":"Bundle","type":"searchset","entry":[]}`))
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	c, err := upstream.New(upstream.Options{BaseURL: srv.URL + "/fhir", Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	base := &access.Policy{Version: 3}
	for _, tc := range []struct {
		status int
		ok     bool
	}{{http.StatusNotFound, true}, {http.StatusBadRequest, true}, {http.StatusForbidden, false}, {http.StatusInternalServerError, false}} {
		status.Store(int32(tc.status))
		e := &consent.EHRConsents{EHR: c}
		p, err := e.Merge(ctx, "pa", base)
		if tc.ok && (err != nil || p != base) {
			t.Errorf("EHR answering %d: %+v %v, want the policy as it was", tc.status, p, err)
		}
		if !tc.ok && (err == nil || !clinical.IsUnavailable(err)) {
			t.Errorf("EHR answering %d: %v, want unavailable", tc.status, err)
		}
	}

	// A good answer stands in for a failing EHR for ten minutes.
	var now atomic.Int64
	now.Store(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()).UTC() }
	e := &consent.EHRConsents{EHR: c, Now: clock}
	status.Store(http.StatusOK)
	if _, err := e.Merge(ctx, "pa", base); err != nil {
		t.Fatal(err)
	}
	status.Store(http.StatusServiceUnavailable)
	now.Add(int64(2 * time.Minute))
	if _, err := e.Merge(ctx, "pa", base); err != nil {
		t.Errorf("two minutes after a good answer, with the EHR down: %v", err)
	}
	before := calls.Load()
	if _, err := e.Merge(ctx, "pa", base); err != nil || calls.Load() != before {
		t.Errorf("a failure just now is asked again at once (%d calls), %v", calls.Load()-before, err)
	}
	now.Add(int64(10 * time.Minute))
	if _, err := e.Merge(ctx, "pa", base); err == nil {
		t.Error("twelve minutes after the last good answer the EHR's consents are still taken as none")
	}

	// The patient's own record never asks the EHR for consents.
	status.Store(http.StatusServiceUnavailable)
	calls.Store(0)
	sig, _ := audit.NewSigner(make([]byte, 32))
	aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "test"})
	t.Cleanup(func() { aw.Close(ctx) })
	gw := &clinical.Gateway{Source: c, Audit: aw, Policies: &access.Store{DB: db}, Consents: &consent.EHRConsents{EHR: c}}
	_, err = gw.Read(ctx, clinical.Request{Principal: access.Principal{User: "Person/pa", Patient: "pa"}}, "Observation", "x")
	if calls.Load() != 0 || apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("the patient's own read asked the EHR's consents %d times (%v)", calls.Load(), err)
	}
}
