package web

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"carefront/internal/audit/audittest"
	"carefront/internal/demo"
	"carefront/internal/identity"
	"carefront/internal/sqldb"
	"carefront/internal/sqldb/sqldbtest"
)

// staff creates a staff account signIn can use.
func (h *authHarness) staff(t *testing.T, email, role, name, practitioner string) {
	t.Helper()
	hash, _ := identity.HashPassword("a long enough passphrase", identity.Params{Memory: 8 * 1024, Time: 1, Threads: 1})
	a := &identity.Account{Kind: identity.Staff, Email: email, PasswordHash: hash, StaffRole: role, DisplayName: name, PractitionerID: practitioner}
	if err := h.store.CreateAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if err := h.store.SetTOTPSecret(context.Background(), a.ID, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"); err != nil {
		t.Fatal(err)
	}
}

// TestClinicianReadsOnlyTheirPatients: Dr. Patel's account, linked to
// her Practitioner record, opens Maria's record (on her care team, with
// visits and appointments), every read audited with her name and role,
// and shown in Maria's access log; Sam's record (no relationship) and
// any record for support staff are refused and audited; staff cannot
// download a record or change a patient's settings.
func TestClinicianReadsOnlyTheirPatients(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		h := recordHarness(t, db)
		h.staff(t, "patel@example.org", "clinician", "Anika Patel", "demo-dr-patel")
		h.staff(t, "help@example.org", "support", "Sam Support", "")
		h.signIn(t, "patel@example.org")
		if _, page := h.get(t, "/"); !strings.Contains(page, `name="for"`) {
			t.Error("the clinician's home does not offer to open a record")
		}
		for _, p := range []string{"/?for=demo-maria", "/results?for=demo-maria", "/summary?for=demo-walter", "/api/views/timeline?for=demo-maria"} {
			res, page := h.get(t, p)
			if res.StatusCode != 200 {
				t.Fatalf("GET %s = %d", p, res.StatusCode)
			}
			if !strings.HasPrefix(p, "/api/") && !strings.Contains(page, "Viewing: ") {
				t.Errorf("GET %s does not name the patient", p)
			}
		}
		if _, _, e := audittest.Last(t, db); !strings.Contains(e, `"display":"Anika Patel"`) || !strings.Contains(e, `"code":"clinician"`) {
			t.Errorf("a clinician's read is not audited with her name and role: %s", e)
		}
		for _, p := range []string{"/?for=demo-sam", "/results?for=demo-lily", "/api/views/home?for=demo-sam"} {
			if res, page := h.get(t, p); res.StatusCode != 403 || strings.Contains(page, "Sam Lee") {
				t.Errorf("GET %s without a care relationship = %d", p, res.StatusCode)
			}
			if out, patient, e := audittest.Last(t, db); out != "4" || !strings.Contains(e, "no-care-relationship") || patient == "" {
				t.Errorf("refusal of %s not audited: %s %s %s", p, out, patient, e)
			}
		}
		for _, p := range []string{"/record/download?for=demo-maria", "/settings/results?for=demo-maria", "/sharing/access-log?for=demo-maria", "/sharing/links?for=demo-maria"} {
			if res, _ := h.get(t, p); res.StatusCode != 403 {
				t.Errorf("clinician GET %s = %d", p, res.StatusCode)
			}
		}
		if res, _ := h.post(t, "/results/show", url.Values{"for": {"demo-maria"}, "ref": {"Observation/demo-maria-a1c-01"}}); res.StatusCode != 403 {
			t.Errorf("clinician Show it now = %d", res.StatusCode)
		}
		h.post(t, "/signout", nil)
		h.signIn(t, "help@example.org")
		if _, page := h.get(t, "/"); strings.Contains(page, `name="for"`) {
			t.Error("support staff are offered to open a record")
		}
		if res, _ := h.get(t, "/?for=demo-maria"); res.StatusCode != 403 {
			t.Errorf("support staff open a record = %d", res.StatusCode)
		}
		if _, _, e := audittest.Last(t, db); !strings.Contains(e, "staff-role-not-permitted") {
			t.Errorf("support staff refusal not audited: %s", e)
		}
		h.post(t, "/signout", nil)
		h.signIn(t, "maria@example.com")
		if _, page := h.get(t, "/sharing/access-log?who=clinic"); !strings.Contains(page, "Anika Patel, clinician") {
			t.Error("Maria's access log does not name Dr. Patel")
		}
		_ = demo.Maria
	})
}
