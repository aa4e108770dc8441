package demo

import (
	"context"
	"errors"
	"fmt"

	"carefront/internal/identity"
)

// DemoTOTPSecret is the authenticator key of every demo account. It is
// public (the README lists it): demo data is made up, and demo mode is
// refused in production.
const DemoTOTPSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

// DemoPassword is the password of every demo account.
const DemoPassword = "demo portal passphrase"

// Logins are the demo accounts, as the README lists them.
var Logins = []struct {
	Email, Who string
	Kind       identity.Kind
	Patient    string
	StaffRole  string
	// Name and Practitioner, for staff: the clinician is Dr. Patel, who
	// cares for Maria and Walter, not for Sam and Lily.
	Name, Practitioner string
}{
	{"maria@demo.carefront.example", "patient: Maria Ortega-Demo", identity.Person, Maria, "", "", ""},
	{"walter@demo.carefront.example", "patient: Walter Brooks-Demo", identity.Person, Walter, "", "", ""},
	{"linda@demo.carefront.example", "caregiver: sees her father Walter's medicines and visits", identity.Person, "", "", "", ""},
	{"dana@demo.carefront.example", "caregiver: parent of Sam (15) and Lily (8)", identity.Person, "", "", "", ""},
	{"clinician@demo.carefront.example", "staff: clinician Anika Patel, reads her patients' records (Maria, Walter)", identity.Staff, "", "clinician", "Anika Patel", "demo-dr-patel"},
	{"billing@demo.carefront.example", "staff: Jordan Lee, support, answers the Billing pool's messages", identity.Staff, "", "support", "Jordan Lee", ""},
}

// SeedAccounts creates the demo accounts unless they exist, each with the
// demo password and authenticator key, and returns lines describing them.
func SeedAccounts(ctx context.Context, st *identity.Store, h *identity.Hasher) ([]string, error) {
	hash, err := h.Hash(ctx, DemoPassword)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range Logins {
		a, err := st.AccountByEmail(ctx, l.Email)
		if errors.Is(err, identity.ErrNoAccount) {
			a = &identity.Account{Kind: l.Kind, Email: l.Email, PasswordHash: hash, PatientID: l.Patient, StaffRole: l.StaffRole,
				DisplayName: l.Name, PractitionerID: l.Practitioner}
			if err := st.CreateAccount(ctx, a); err != nil {
				return nil, err
			}
			if err := st.SetTOTPSecret(ctx, a.ID, DemoTOTPSecret); err != nil {
				return nil, err
			}
		} else if err != nil {
			return nil, err
		} else if a.Kind == identity.Staff && (a.DisplayName != l.Name || a.PractitionerID != l.Practitioner) {
			// A demo data folder from before staff had names.
			if err := st.SetStaffProfile(ctx, a.ID, l.Name, l.Practitioner); err != nil {
				return nil, err
			}
		}
		out = append(out, fmt.Sprintf("%s (%s)", l.Email, l.Who))
	}
	return out, nil
}
