package web

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"carefront/internal/audit/audittest"
	"carefront/internal/consent"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// TestTermsAskedAgainForANewVersion: with terms published, Maria's
// record waits until she accepts them (views answer 403), in her
// language; a new version asks again; what she accepted is on her
// sharing page. Accepting a version that is no longer current asks her
// to read the new one.
func TestTermsAskedAgainForANewVersion(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := recordHarness(t, db)
		book := &consent.TermsBook{DB: db, Audit: h.auth.Audit}
		ctx := context.Background()
		if err := book.Publish(ctx, consent.Terms{Version: "2026-11", English: "Be kind.", Spanish: "Sea amable."}, "test"); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []consent.Terms{{Version: "2026-11", English: "x", Spanish: "y"}, {Version: "v 2", English: "x", Spanish: "y"}, {Version: "v3", English: "x"}} {
			if err := book.Publish(ctx, bad, "test"); err == nil {
				t.Errorf("Publish(%+v) accepted", bad)
			}
		}
		h.signIn(t, "maria@example.com")
		res, _ := h.get(t, "/results")
		if res.StatusCode != 303 || !strings.HasPrefix(res.Header.Get("Location"), "/terms?return=%2Fresults") {
			t.Fatalf("record before the terms: %d to %s", res.StatusCode, res.Header.Get("Location"))
		}
		if res, _ := h.get(t, "/api/views/home"); res.StatusCode != 403 {
			t.Errorf("view before the terms = %d", res.StatusCode)
		}
		if _, page := h.get(t, "/terms?lang=es"); !strings.Contains(page, "Sea amable.") || !strings.Contains(page, "Términos de uso") {
			t.Error("the terms are not shown in Spanish")
		}
		res, _ = h.post(t, "/terms", url.Values{"version": {"2026-11"}, "return": {"/results"}})
		if res.StatusCode != 303 || res.Header.Get("Location") != "/results" {
			t.Fatalf("accept = %d to %s", res.StatusCode, res.Header.Get("Location"))
		}
		if _, _, e := audittest.Last(t, db); !strings.Contains(e, "terms-accepted") {
			t.Errorf("acceptance not audited: %s", e)
		}
		if res, _ := h.get(t, "/results"); res.StatusCode != 200 {
			t.Errorf("record after the terms = %d", res.StatusCode)
		}
		if err := book.Publish(ctx, consent.Terms{Version: "2027-01", English: "Be kinder.", Spanish: "Sea más amable."}, "test"); err != nil {
			t.Fatal(err)
		}
		if res, _ := h.get(t, "/"); res.StatusCode != 303 || !strings.HasPrefix(res.Header.Get("Location"), "/terms") {
			t.Errorf("a new version is not asked for: %d", res.StatusCode)
		}
		if res, _ := h.post(t, "/terms", url.Values{"version": {"2026-11"}}); res.StatusCode != 303 || res.Header.Get("Location") != "/terms" {
			t.Errorf("accepting an old version = %d to %s", res.StatusCode, res.Header.Get("Location"))
		}
		h.post(t, "/terms", url.Values{"version": {"2027-01"}})
		if res, page := h.get(t, "/sharing"); !strings.Contains(page, "2027-01") || !strings.Contains(page, "2026-11") {
			t.Errorf("the sharing page (%d) does not list the terms accepted:\n%s", res.StatusCode, page)
		}
	})
}

// TestResearchJoinAndLeave: Maria joins a study (a research Consent in
// her record, active) and leaves it (the same Consent, inactive); each
// audited; a caregiver cannot do it for her; an unknown study is 404.
func TestResearchJoinAndLeave(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	h := recordHarness(t, db)
	h.signIn(t, "maria@example.com")
	if _, page := h.get(t, "/sharing"); strings.Contains(page, "Research studies") {
		t.Error("a research card with no studies")
	}
	study, err := h.ts.opts.Research.Add(context.Background(), "Diabetes in our community", "A survey each year.\nNothing is shared without you.", "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.ts.opts.Research.Add(context.Background(), "", "x", "test"); err == nil {
		t.Error("a study without a title was added")
	}
	if res, _ := h.post(t, "/sharing/research", url.Values{"study": {study.ID}, "join": {"1"}}); res.StatusCode != 303 {
		t.Fatalf("join = %d", res.StatusCode)
	}
	if _, page := h.get(t, "/sharing"); !strings.Contains(page, "You joined on") {
		t.Error("joining is not shown")
	}
	if _, _, e := audittest.Last(t, db); !strings.Contains(e, "research-joined") {
		t.Errorf("joining not audited: %s", e)
	}
	h.post(t, "/sharing/research", url.Values{"study": {study.ID}, "join": {"0"}})
	if _, page := h.get(t, "/sharing"); !strings.Contains(page, "You have not joined") {
		t.Error("leaving is not shown")
	}
	if res, _ := h.post(t, "/sharing/research", url.Values{"study": {"study-nope"}, "join": {"1"}}); res.StatusCode != 404 {
		t.Errorf("an unknown study = %d", res.StatusCode)
	}
	if res, _ := h.post(t, "/sharing/research", url.Values{"for": {"demo-maria"}, "study": {study.ID}, "join": {"1"}}); res.StatusCode != 403 {
		t.Errorf("joining for someone else = %d", res.StatusCode)
	}
}
