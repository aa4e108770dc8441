package demo

import (
	"context"
	"fmt"
	"time"

	"carefront/internal/clinical/store"
	"carefront/internal/consent"
	"carefront/internal/views"
)

// Caregivers are the demo's caregiver grants: Linda sees her father
// Walter's medicines, appointments and visits; Dana is the parent of Sam
// (15: his sensitive visits stay private from her) and Lily (8).
var Caregivers = []struct {
	Email, Patient, Preset string
}{
	{"linda@demo.carefront.example", Walter, "medications-visits"},
	{"dana@demo.carefront.example", Sam, "full"},
	{"dana@demo.carefront.example", Lily, "full"},
}

// SeedGrants gives the demo caregivers their grants, for a year, unless a
// grant for that caregiver and patient is in force (one revoked while
// trying the demo comes back at the next start). Run it after the demo
// records and accounts exist.
func SeedGrants(ctx context.Context, st *store.Store, gs *consent.Grants, now time.Time) error {
	for _, c := range Caregivers {
		existing, err := gs.List(ctx, c.Patient)
		if err != nil {
			return err
		}
		inForce := false
		for _, g := range existing {
			inForce = inForce || (g.Email == c.Email && g.Active(now))
		}
		if inForce {
			continue
		}
		rec, err := st.Read(ctx, "Patient", c.Patient)
		if err != nil {
			return fmt.Errorf("demo grants: %w", err)
		}
		name, birth := views.PatientFacts(rec)
		if _, err := gs.Grant(ctx, consent.NewGrant{Patient: c.Patient, Email: c.Email, Preset: c.Preset,
			Until: now.AddDate(1, 0, 0), PatientBirth: birth, PatientName: name, By: "carefront-demo"}); err != nil {
			return fmt.Errorf("demo grants: %w", err)
		}
	}
	return nil
}
