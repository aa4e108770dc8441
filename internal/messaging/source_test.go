package messaging_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/clinical"
	"carefront/internal/clinical/store"
	"carefront/internal/fhir"
	"carefront/internal/messaging"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// TestMessagesAsCommunications: through the gateway, with messaging's
// Source in front of the clinical store, Maria reads and searches her
// messages as valid FHIR Communications (text filled in, the answer
// pointing at the question, read times); Sam finds none of them, by id or
// by search; a caregiver without messages in their grant is refused; a
// search parameter the source does not support is refused, not ignored.
func TestMessagesAsCommunications(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		gw := &clinical.Gateway{Source: &messaging.Source{Clinical: store.New(db), Store: f.s}, Audit: f.s.Audit, Policies: &access.Store{DB: db}, Now: db.Now}
		th, err := f.s.Start(ctx, gw, f.maria, f.mariaAs, f.pools(), f.rivera.ID, "Knee pain", "Still hurts.")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.Thread(ctx, gw, f.drRivera, th.ID); err != nil {
			t.Fatal(err)
		}
		answer, err := f.s.Send(ctx, gw, f.drRivera, f.riveraAs, th.ID, "Come in on Friday.")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.Start(ctx, gw, f.sam, messaging.Author{Account: "acct-sam", Kind: messaging.ByPatient}, f.pools(), f.billing.ID, "Bill", "Sam's own question"); err != nil {
			t.Fatal(err)
		}

		r, err := gw.Read(ctx, f.maria, "Communication", answer.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := fhir.ValidatePrimitives("Communication", r.Raw); err != nil {
			t.Errorf("not a valid Communication: %v\n%s", err, r.Raw)
		}
		for _, want := range []string{`"contentString":"Come in on Friday."`, `"display":"Dr. Ana Rivera"`, `"recipient":[{"reference":"Patient/maria"}]`,
			`"inResponseTo":[{"reference":"Communication/` + th.Messages[0].ID + `"}]`, `"topic":{"text":"Knee pain"}`, `"status":"completed"`} {
			if !strings.Contains(string(r.Raw), want) {
				t.Errorf("the answer as a Communication lacks %s:\n%s", want, r.Raw)
			}
		}
		q, err := fhir.ParseQuery("Communication", url.Values{"patient": {"maria"}, "_total": {"accurate"}}, false)
		if err != nil {
			t.Fatal(err)
		}
		page, err := gw.Search(ctx, f.maria, q)
		if err != nil || len(page.Matches) != 2 || page.Total == nil || *page.Total != 2 || page.Matches[0].ID != answer.ID {
			t.Fatalf("Maria's search: %+v, %v; want her two messages, the answer first", page, err)
		}
		if !strings.Contains(string(page.Matches[1].Raw), `"received":`) {
			t.Errorf("her question, read by the team, has no received time: %s", page.Matches[1].Raw)
		}

		if _, err := gw.Read(ctx, f.sam, "Communication", answer.ID); apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("Sam reads Maria's message: %v, want NotFound", err)
		}
		samQ, _ := fhir.ParseQuery("Communication", url.Values{}, false)
		if page, err := gw.Search(ctx, f.sam, samQ); err != nil || len(page.Matches) != 1 || strings.Contains(string(page.Matches[0].Raw), "maria") {
			t.Errorf("Sam's search: %+v, %v; want only his own message", page, err)
		}
		other, _ := fhir.ParseQuery("Communication", url.Values{"patient": {"maria"}}, false)
		if page, err := gw.Search(ctx, f.sam, other); err != nil || len(page.Matches) != 0 {
			t.Errorf("Sam searches Maria's messages: %+v, %v; want nothing", page, err)
		}
		noMessages := clinical.Request{Principal: access.Principal{User: "RelatedPerson/dana", Patient: "maria", Caregiver: true,
			Proxy: &access.Proxy{GrantID: "g1", Kinds: []string{"MedicationRequest"}, Until: time.Now().Add(time.Hour)}}}
		if _, err := gw.Read(ctx, noMessages, "Communication", answer.ID); apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("a caregiver without messages reads one: %v, want NotFound", err)
		}
		bad, _ := fhir.ParseQuery("Communication", url.Values{"category": {"alert"}}, false)
		if _, err := gw.Search(ctx, f.maria, bad); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("an unsupported parameter: %v, want Invalid", err)
		}
	})
}

// TestMessagesBeforeTheSourcesCommunications: the clinical source's own
// Communications (an EHR's, or imported ones) follow carefront's messages
// in a search, page by page, with one total; a read by id reaches them.
func TestMessagesBeforeTheSourcesCommunications(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		st := store.New(db)
		bundle := &fhir.Bundle{ResourceType: "Bundle", Type: "transaction"}
		for _, id := range []string{"ehr-1", "ehr-2"} {
			bundle.Entry = append(bundle.Entry, &fhir.Entry{
				Resource: []byte(`{"resourceType":"Communication","id":"` + id + `","status":"completed","subject":{"reference":"Patient/maria"},"sent":"2020-01-01T00:00:00Z"}`),
				Request:  &fhir.EntryRequest{Method: "PUT", URL: "Communication/" + id}})
		}
		if _, err := st.Process(ctx, bundle, store.BundleOptions{Import: true}); err != nil {
			t.Fatal(err)
		}
		gw := &clinical.Gateway{Source: &messaging.Source{Clinical: st, Store: f.s}, Audit: f.s.Audit, Policies: &access.Store{DB: db}, Now: db.Now}
		th, err := f.s.Start(ctx, gw, f.maria, f.mariaAs, f.pools(), f.rivera.ID, "Knee", "Still hurts.")
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		q, _ := fhir.ParseQuery("Communication", url.Values{"_count": {"2"}, "_total": {"accurate"}}, false)
		for pages := 0; ; pages++ {
			page, err := gw.Search(ctx, f.maria, q)
			if err != nil {
				t.Fatal(err)
			}
			if page.Total == nil || *page.Total != 3 {
				t.Errorf("page %d: total %v, want 3", pages, page.Total)
			}
			for _, r := range page.Matches {
				ids = append(ids, r.ID)
			}
			if page.Next == "" || pages > 3 {
				break
			}
			q.Cursor = page.Next
		}
		if len(ids) != 3 || ids[0] != th.Messages[0].ID || !strings.HasPrefix(ids[1], "ehr-") || !strings.HasPrefix(ids[2], "ehr-") {
			t.Errorf("pages gave %v, want the message, then ehr-1 and ehr-2", ids)
		}
		if r, err := gw.Read(ctx, f.maria, "Communication", "ehr-2"); err != nil || r.ID != "ehr-2" {
			t.Errorf("reading the source's Communication: %v", err)
		}
		if _, err := gw.Read(ctx, f.sam, "Communication", "ehr-2"); apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("Sam reads Maria's source Communication: %v", err)
		}
	})
}
