package web

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"carefront/internal/accesslog"
	"carefront/internal/demo"
	"carefront/internal/identity"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// TestAccessLog: Walter reads who viewed his record: Linda, his
// caregiver, by her address, with the kinds of data she saw; filters by
// who and period; pages without repeating a row. Bad filters are 400. A
// caregiver with full access reads the log of that record, one with less
// does not, and neither does the parent of a teenager.
func TestAccessLog(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := recordHarness(t, db)
		h.account(t, "walter@example.com", identity.Person, demo.Walter, "")
		h.account(t, "linda@example.com", identity.Person, "", "")
		h.account(t, "dana@example.com", identity.Person, "", "")
		h.grant(t, demo.Walter, "linda@example.com", "full")
		h.grant(t, demo.Sam, "dana@example.com", "full")
		h.grant(t, demo.Lily, "dana@example.com", "medications-visits")
		h.signIn(t, "linda@example.com")
		for i := 0; i < 30; i++ {
			h.get(t, "/medications?for=demo-walter")
			h.get(t, "/results?for=demo-walter")
		}
		if res, page := h.get(t, "/sharing/access-log?for=demo-walter"); res.StatusCode != 200 || !strings.Contains(page, "Viewing: Walter") {
			t.Errorf("Linda (full access) reads Walter's log = %d", res.StatusCode)
		}
		h.post(t, "/signout", nil)
		h.signIn(t, "walter@example.com")
		h.get(t, "/summary")
		res, page := h.get(t, "/sharing/access-log")
		if res.StatusCode != 200 {
			t.Fatalf("log = %d", res.StatusCode)
		}
		for _, want := range []string{"Caregiver: linda@example.com", "Medicines", "Test results", "Looked at the record", "You"} {
			if !strings.Contains(page, want) {
				t.Errorf("Walter's log lacks %q", want)
			}
		}
		if _, page := h.get(t, "/sharing/access-log?who=clinic&period=365"); !strings.Contains(page, "Changed who can see the record") || !strings.Contains(page, "Clinic systems") {
			t.Error("the clinic's grant to Linda is not in Walter's log")
		}
		if strings.Contains(page, "maria") || strings.Contains(page, "dana@") {
			t.Error("Walter's log names someone else's access")
		}
		// Paging: every row once, newest first.
		seen := 0
		next := ""
		for pages := 0; pages < 10; pages++ {
			_, js := h.get(t, "/api/views/access-log?who=caregiver&period=0"+next)
			var pg accesslog.Page
			if err := json.Unmarshal([]byte(js), &pg); err != nil {
				t.Fatal(err)
			}
			for i, r := range pg.Rows {
				if r.Who != accesslog.WhoCaregiver || r.Name != "linda@example.com" {
					t.Fatalf("who=caregiver gives %+v", r)
				}
				if i > 0 && r.When.After(pg.Rows[i-1].When) {
					t.Fatal("rows are not newest first")
				}
			}
			seen += len(pg.Rows)
			if pg.Next == 0 {
				break
			}
			next = "&before=" + strconv.FormatInt(pg.Next, 10)
		}
		if seen != 61 { // 60 views and her reading of the log
			t.Errorf("Linda's accesses paged to %d rows, want 61", seen)
		}
		for _, bad := range []string{"?period=7", "?who=hackers", "?before=-1", "?before=x"} {
			if res, _ := h.get(t, "/sharing/access-log"+bad); res.StatusCode != 400 {
				t.Errorf("log%s = %d, want 400", bad, res.StatusCode)
			}
		}
		h.post(t, "/signout", nil)
		h.signIn(t, "dana@example.com")
		if res, _ := h.get(t, "/sharing/access-log?for=demo-sam"); res.StatusCode != 403 {
			t.Errorf("parent of a teenager reads his log = %d", res.StatusCode)
		}
		if res, _ := h.get(t, "/sharing/access-log?for=demo-lily"); res.StatusCode != 403 {
			t.Errorf("caregiver without full access reads the log = %d", res.StatusCode)
		}
		if res, _ := h.get(t, "/sharing/access-log?for=demo-walter"); res.StatusCode != 303 {
			t.Errorf("someone else's log = %d", res.StatusCode)
		}
	})
}
