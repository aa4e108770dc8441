package access

import (
	"context"
	"testing"
	"time"
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

// TestStaffDecisions: a clinician reads and searches the record of a
// patient they care for, whole (a result the patient waits to review
// included), and nothing of anyone else's; other staff roles, and a
// clinician with no care relationship or no Practitioner link, see no
// clinical data.
func TestStaffDecisions(t *testing.T) {
	ctx := context.Background()
	obs := Target{Type: "Observation", ID: "o", Patients: []string{"p"},
		Result: &ResultFacts{Status: "final", Categories: []string{CategoryLab}, Issued: time.Now()}}
	dr := Principal{User: "Person/dr", Role: RoleClinician, Practitioner: "Practitioner/dr", Patient: "p", CareRelationship: true,
		Policy: &Policy{Wait: map[string]int{CategoryLab: 7}}, At: time.Now()}
	for _, tc := range []struct {
		name   string
		p      func(Principal) Principal
		a      Action
		t      Target
		permit bool
		reason string
	}{
		{"clinician reads a patient's result", nil, Read, obs, true, ReasonCare},
		{"clinician searches the patient's results", nil, Search, Target{Type: "Observation"}, true, ReasonCare},
		{"clinician reads a directory resource", nil, Read, Target{Type: "Practitioner", ID: "x"}, true, ReasonDirectory},
		{"clinician reads another patient's result", nil, Read, Target{Type: "Observation", Patients: []string{"q"}}, false, ReasonOtherPatient},
		{"no care relationship", func(p Principal) Principal { p.CareRelationship = false; return p }, Read, obs, false, ReasonNoCare},
		{"no Practitioner link", func(p Principal) Principal { p.Practitioner = ""; return p }, Read, obs, false, ReasonNoCare},
		{"no patient named", func(p Principal) Principal { p.Patient = ""; return p }, Search, Target{Type: "Observation"}, false, ReasonNoPatient},
		{"support staff", func(p Principal) Principal { p.Role = RoleSupport; return p }, Read, obs, false, ReasonStaffRole},
		{"security officer", func(p Principal) Principal { p.Role = RoleSecurityOfficer; return p }, Search, Target{Type: "Observation"}, false, ReasonStaffRole},
		{"admin", func(p Principal) Principal { p.Role = RoleAdmin; return p }, Read, Target{Type: "Patient", Patients: []string{"p"}}, false, ReasonStaffRole},
		{"a role carefront does not know", func(p Principal) Principal { p.Role = "surgeon"; return p }, Read, obs, false, ReasonStaffRole},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := dr
			if tc.p != nil {
				p = tc.p(p)
			}
			d := Decide(ctx, p, tc.a, tc.t)
			if d.Permit != tc.permit || d.Reason != tc.reason {
				t.Errorf("Decide = %v %s, want %v %s", d.Permit, d.Reason, tc.permit, tc.reason)
			}
			if d.Permit && d.Obligation.Holds(time.Now()) {
				t.Error("a clinician's read is held for the patient's review")
			}
		})
	}
}

// TestMessageDecisions: a patient writes messages into their own record
// only; a caregiver only with messages in their grant; share links and
// apps never write; clinicians and support staff read and write the
// messages of the pools they answer, and no other's, and nothing else by
// that rule; no one writes anything but messages.
func TestMessageDecisions(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	msg := Target{Type: "Communication", ID: "m", Patients: []string{"p"}, Pool: "rivera"}
	appt := Target{Type: "Appointment", ID: "a", Patients: []string{"p"}}
	pat := Principal{User: "Patient/p", Patient: "p", At: now}
	caregiver := func(kinds ...string) Principal {
		types, _ := KindTypes(kinds)
		return Principal{User: "RelatedPerson/dana", Patient: "p", Caregiver: true, At: now,
			Proxy: &Proxy{GrantID: "g", Kinds: types, Until: now.Add(time.Hour)}}
	}
	staff := func(role string, pools ...string) Principal {
		return Principal{User: "Person/s", Role: role, Pools: pools, At: now}
	}
	for _, tc := range []struct {
		name   string
		p      Principal
		a      Action
		t      Target
		permit bool
		reason string
	}{
		{"patient writes to their record", pat, Write, msg, true, ReasonOwnRecord},
		{"patient writes into another record", pat, Write, Target{Type: "Communication", Patients: []string{"q"}}, false, ReasonOtherPatient},
		{"patient writes an Observation", pat, Write, Target{Type: "Observation", Patients: []string{"p"}}, false, ReasonNotPatientData},
		{"caregiver with messages writes", caregiver("messages"), Write, msg, true, ReasonProxy},
		{"caregiver without messages", caregiver("medications", "visits"), Write, msg, false, ReasonProxyKind},
		{"caregiver without messages reads one", caregiver("results"), Read, msg, false, ReasonProxyKind},
		{"share link never writes", func() Principal {
			p := pat
			p.Link = &Link{Types: []string{"Communication"}}
			return p
		}(), Write, msg, false, ReasonNotPatientData},
		{"an app never writes", func() Principal { p := pat; p.Client = "diary"; return p }(), Write, msg, false, ReasonNotPatientData},
		{"pool member reads", staff(RoleSupport, "billing", "rivera"), Read, msg, true, ReasonPoolMember},
		{"pool member replies", staff(RoleClinician, "rivera"), Write, msg, true, ReasonPoolMember},
		{"member of another pool", staff(RoleSupport, "billing"), Read, msg, false, ReasonStaffRole},
		{"clinician of another pool, no care relationship", staff(RoleClinician, "billing"), Write, msg, false, ReasonNoPatient},
		{"security officer named in no pool", staff(RoleSecurityOfficer, "rivera"), Read, msg, false, ReasonStaffRole},
		{"pool member, a message outside any pool", staff(RoleSupport, "rivera"), Read, Target{Type: "Communication", Patients: []string{"p"}}, false, ReasonStaffRole},
		{"pool member, another type", staff(RoleSupport, "rivera"), Read, Target{Type: "Observation", Patients: []string{"p"}, Pool: "rivera"}, false, ReasonStaffRole},
		{"pool member reads who wrote", staff(RoleSupport, "rivera"), Read, Target{Type: "Patient", ID: "p", Patients: []string{"p"}, Pool: "rivera"}, true, ReasonPoolMember},
		{"pool member writes to the Patient", staff(RoleSupport, "rivera"), Write, Target{Type: "Patient", ID: "p", Patients: []string{"p"}, Pool: "rivera"}, false, ReasonNotPatientData},
		{"member of another pool reads the Patient", staff(RoleSupport, "billing"), Read, Target{Type: "Patient", ID: "p", Patients: []string{"p"}, Pool: "rivera"}, false, ReasonStaffRole},
		{"pool member reads a Patient reached by no pool", staff(RoleSupport, "rivera"), Read, Target{Type: "Patient", ID: "p", Patients: []string{"p"}}, false, ReasonStaffRole},
		{"patient books a visit", pat, Write, appt, true, ReasonOwnRecord},
		{"patient books for another record", pat, Write, Target{Type: "Appointment", Patients: []string{"q"}}, false, ReasonOtherPatient},
		{"caregiver with visits books", caregiver("visits"), Write, appt, true, ReasonProxy},
		{"caregiver with messages only cannot book", caregiver("messages"), Write, appt, false, ReasonProxyKind},
		{"an app never books", func() Principal { p := pat; p.Client = "diary"; return p }(), Write, appt, false, ReasonNotPatientData},
		{"staff do not book through the portal", staff(RoleClinician, "rivera"), Write, appt, false, ReasonNoPatient},
		{"patient asks for a refill", pat, Write, Target{Type: "Task", Patients: []string{"p"}, Focus: "MedicationRequest"}, true, ReasonOwnRecord},
		{"caregiver with medicines asks for a refill", caregiver("medications"), Write, Target{Type: "Task", Patients: []string{"p"}, Focus: "MedicationRequest"}, true, ReasonProxy},
		{"caregiver with messages only asks for a refill", caregiver("messages"), Write, Target{Type: "Task", Patients: []string{"p"}, Focus: "MedicationRequest"}, false, ReasonProxyKind},
		{"clinician with care answers a request", func() Principal {
			p := staff(RoleClinician)
			p.Patient, p.CareRelationship, p.Practitioner = "p", true, "Practitioner/x"
			return p
		}(), Write, Target{Type: "Task", Patients: []string{"p"}}, true, ReasonCare},
		{"clinician without care answers a request", func() Principal {
			p := staff(RoleClinician)
			p.Patient, p.Practitioner = "p", "Practitioner/x"
			return p
		}(), Write, Target{Type: "Task", Patients: []string{"p"}}, false, ReasonNoCare},
		{"clinician with care writes back a visit's Encounter", func() Principal {
			p := staff(RoleClinician)
			p.Patient, p.CareRelationship, p.Practitioner = "p", true, "Practitioner/x"
			return p
		}(), Write, Target{Type: "Encounter", Patients: []string{"p"}}, true, ReasonCare},
		{"clinician with care writes another patient's visit summary", func() Principal {
			p := staff(RoleClinician)
			p.Patient, p.CareRelationship, p.Practitioner = "p", true, "Practitioner/x"
			return p
		}(), Write, Target{Type: "DocumentReference", Patients: []string{"q"}}, false, ReasonNotPatientData},
		{"a patient writes an Encounter", pat, Write, Target{Type: "Encounter", Patients: []string{"p"}}, false, ReasonNotPatientData},
		{"clinician writes an Appointment", func() Principal {
			p := staff(RoleClinician)
			p.Patient, p.CareRelationship, p.Practitioner = "p", true, "Practitioner/x"
			return p
		}(), Write, Target{Type: "Appointment", Patients: []string{"p"}}, false, ReasonNotPatientData},
		{"pool member acting for another patient", func() Principal { p := staff(RoleSupport, "rivera"); p.Patient = "q"; return p }(), Read, msg, false, ReasonOtherPatient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(ctx, tc.p, tc.a, tc.t)
			if d.Permit != tc.permit || d.Reason != tc.reason {
				t.Errorf("Decide = %v %s, want %v %s", d.Permit, d.Reason, tc.permit, tc.reason)
			}
		})
	}
}
