package access

import (
	"context"
	"testing"
)

func TestDecide(t *testing.T) {
	pa := Principal{User: "Patient/pa", Patient: "pa"}
	for _, tc := range []struct {
		name   string
		p      Principal
		a      Action
		t      Target
		permit bool
		reason string
		comp   string
	}{
		{"own record", pa, Read, Target{Type: "Observation", ID: "o", Patients: []string{"pa"}}, true, ReasonOwnRecord, ""},
		{"record in two compartments", pa, Read, Target{Type: "Observation", Patients: []string{"pb", "pa"}}, true, ReasonOwnRecord, ""},
		{"other patient's record", pa, Read, Target{Type: "Observation", Patients: []string{"pb"}}, false, ReasonOtherPatient, ""},
		{"directory resource", pa, Read, Target{Type: "Practitioner"}, true, ReasonDirectory, ""},
		{"non-patient data", pa, Read, Target{Type: "Account"}, false, ReasonNotPatientData, ""},
		{"compartment type without patient", pa, Read, Target{Type: "Observation"}, false, ReasonNotPatientData, ""},
		{"no patient context", Principal{User: "Practitioner/d"}, Read, Target{Type: "Observation", Patients: []string{"pa"}}, false, ReasonNoPatient, ""},
		{"search own compartment", pa, Search, Target{Type: "Observation"}, true, ReasonOwnRecord, "pa"},
		{"search directory", pa, Search, Target{Type: "Location"}, true, ReasonDirectory, ""},
		{"search other type", pa, Search, Target{Type: "AuditEvent"}, false, ReasonNotPatientData, ""},
		{"staff role alone grants nothing yet", Principal{User: "Person/s1", Role: "clinician"}, Read, Target{Type: "Observation", Patients: []string{"pa"}}, false, ReasonNoPatient, ""},
		{"unknown action", pa, Action("write"), Target{Type: "Observation", Patients: []string{"pa"}}, false, ReasonNotPatientData, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(context.Background(), tc.p, tc.a, tc.t)
			if d.Permit != tc.permit || d.Reason != tc.reason || d.Compartment != tc.comp {
				t.Errorf("Decide = %+v, want permit=%v reason=%s compartment=%q", d, tc.permit, tc.reason, tc.comp)
			}
		})
	}
}
