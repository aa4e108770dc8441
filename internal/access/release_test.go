package access

import (
	"context"
	"testing"
	"time"
)

func TestReleaseRule(t *testing.T) {
	issued := time.Date(2026, 11, 20, 8, 30, 0, 0, time.UTC)
	pa := Principal{User: "Person/a", Patient: "pa"}
	lab := func(status string, reviewed bool, cats ...string) Target {
		if cats == nil {
			cats = []string{CategoryLab}
		}
		return Target{Type: "Observation", ID: "o1", Patients: []string{"pa"},
			Result: &ResultFacts{Status: status, Categories: cats, Issued: issued, Reviewed: reviewed}}
	}
	wait7 := &Policy{Wait: map[string]int{CategoryLab: 7}}
	for _, tc := range []struct {
		name   string
		policy *Policy
		t      Target
		at     time.Time
		permit bool
		held   bool
	}{
		{"final, no choice: at once", nil, lab("final", false), issued, true, false},
		{"amended shows", nil, lab("amended", false), issued, true, false},
		{"preliminary never shows", nil, lab("preliminary", false), issued, false, false},
		{"registered never shows", wait7, lab("registered", false), issued.AddDate(0, 1, 0), false, false},
		{"waiting for review, day 1", wait7, lab("final", false), issued.Add(24 * time.Hour), true, true},
		{"waiting, a second before the wait ends", wait7, lab("final", false), issued.Add(7*24*time.Hour - time.Second), true, true},
		{"the wait is over", wait7, lab("final", false), issued.Add(7 * 24 * time.Hour), true, false},
		{"reviewed shows at once", wait7, lab("final", true), issued, true, false},
		{"asked to see it now", &Policy{Wait: map[string]int{CategoryLab: 7}, Shown: []string{"Observation/o1"}}, lab("final", false), issued, true, false},
		{"another category shows at once", wait7, lab("final", false, CategoryImaging), issued, true, false},
		{"vital signs always at once", wait7, lab("final", false, "vital-signs"), issued, true, false},
		{"the longest wait of its categories", &Policy{Wait: map[string]int{CategoryLab: 3, CategoryPathology: 14}},
			lab("final", false, CategoryLab, CategoryPathology), issued.AddDate(0, 0, 10), true, true},
		{"waits are capped", &Policy{Wait: map[string]int{CategoryLab: 365}}, lab("final", false), issued.AddDate(0, 0, MaxWaitDays), true, false},
		{"no date: shown rather than held for ever", wait7, Target{Type: "Observation", ID: "o1", Patients: []string{"pa"},
			Result: &ResultFacts{Status: "final", Categories: []string{CategoryLab}}}, issued, true, false},
		{"another patient's result: denied before any rule", wait7, Target{Type: "Observation", Patients: []string{"pb"},
			Result: &ResultFacts{Status: "final"}}, issued, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pa
			p.Policy = tc.policy
			d := Decide(context.Background(), p, Read, tc.t)
			if d.Permit != tc.permit || d.Obligation.Holds(tc.at) != tc.held {
				t.Errorf("Decide = permit %v, holds at %s %v (until %s); want permit %v, held %v",
					d.Permit, tc.at, d.Obligation.Holds(tc.at), d.Obligation.HoldUntil, tc.permit, tc.held)
			}
		})
	}
}
