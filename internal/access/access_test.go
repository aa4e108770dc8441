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
		{"operator reads anything", Principal{Client: "carefront-cli", Role: RoleOperator}, Read, Target{Type: "Observation", Patients: []string{"pa"}}, true, ReasonOperator, ""},
		{"operator searches unnarrowed", Principal{Role: RoleOperator}, Search, Target{Type: "Observation"}, true, ReasonOperator, ""},
		{"identity proofing reads a Patient", Principal{Role: RoleIdentityProofing}, Read, Target{Type: "Patient", Patients: []string{"pa"}}, true, ReasonIdentityProofing, ""},
		{"identity proofing reads nothing else", Principal{Role: RoleIdentityProofing}, Read, Target{Type: "Observation", Patients: []string{"pa"}}, false, ReasonNotPatientData, ""},
		{"identity proofing cannot search", Principal{Role: RoleIdentityProofing}, Search, Target{Type: "Patient"}, false, ReasonNotPatientData, ""},
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
