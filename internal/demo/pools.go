package demo

import (
	"context"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/messaging"
)

// Pools are the demo clinic's messaging pools: Dr. Patel's team, offered
// to her patients and answered by her, and Billing, offered to everyone and
// answered by Jordan Lee.
var Pools = []struct {
	Name         string
	ResponseTime time.Duration
	Practitioner string
	Member       string
}{
	{"Dr. Patel's team", 48 * time.Hour, "demo-dr-patel", "clinician@demo.carefront.example"},
	{"Billing", 72 * time.Hour, "", "billing@demo.carefront.example"},
}

// SeedPools adds the demo pools and their members unless they exist.
func SeedPools(ctx context.Context, ms *messaging.Store) error {
	for _, p := range Pools {
		_, err := ms.AddPool(ctx, messaging.NewPool{Name: p.Name, ResponseTime: p.ResponseTime, Practitioner: p.Practitioner})
		if err != nil && apperr.CodeOf(err) != apperr.Conflict {
			return err
		}
		if err := ms.AddMember(ctx, p.Name, p.Member, ""); err != nil {
			return err
		}
	}
	return nil
}
