// Package access is carefront's policy decision point: Decide says whether
// a principal may take an action on a target, and with which obligations.
// Every read and search of clinical data made for a person goes through
// it. Deny is the default: a request is permitted only by a rule that
// names it.
//
// The rules, in layers: the relationship (a patient's own record, or a
// caregiver's grant, proxy.go), the age policy and sensitivity labels
// (a parent of a teenager sees no sensitive record), then what the grant
// covers. A permitted principal may also read directory resources that
// hold no patient's data (practitioners, organizations, locations,
// medications, ...). Results show when final, and as the patient chose to
// release them (release.go), an obligation on the permit. A patient's
// policy is compiled once per access version (store.go).
package access

import (
	"context"
	"slices"
	"time"

	"carefront/internal/fhir"
)

// Principal is who acts, and for which patient.
type Principal struct {
	// User is a reference to the person acting, e.g. "Patient/123".
	User string
	// Patient is the id of the patient whose data they act on; empty when
	// they act for no patient.
	Patient string
	// Client is the OAuth client id when an app acts for the person.
	Client string
	// Role is a staff member's role (clinician, support, security-officer,
	// admin); empty for patients and the people they authorize. A
	// clinician reads the records of patients they have a care
	// relationship with; the other staff roles see no clinical data.
	Role string
	// Name is a staff member's name, for the audit trail.
	Name string
	// Practitioner is a clinician's own Practitioner ("Practitioner/ID").
	Practitioner string
	// CareRelationship says the gateway found that Practitioner cares for
	// Patient (a CareTeam membership, or an Appointment or Encounter with
	// them within the look-back); the staff rule needs it.
	CareRelationship bool
	// Address is the network address the request came from.
	Address string
	// Link, when set, is a share link acting for the person who made it:
	// it sees what they may see, of the kinds it holds only.
	Link *Link
	// Caregiver says the person acts for Patient as a caregiver, not for
	// themself: the relationship is the grant Proxy, which the gateway
	// takes from the patient's policy (Policy.ProxyFor). A caregiver with
	// no grant in force is refused everything.
	Caregiver bool
	// Proxy, when set, is the grant under which the person acts for
	// Patient (a caregiver); nil means they act for themself.
	Proxy *Proxy
	// At is when the request is made (proxy grants end, and patients come
	// of age); the gateway sets it.
	At time.Time
	// Policy is the choices of the patient whose data is acted on (their
	// release of results); the enforcement point loads it for the request.
	// Nil applies no choices.
	Policy *Policy
	// Pools are the messaging pools a clinician or support staff member
	// answers: they read and write the messages of those pools' threads.
	Pools []string
}

// Action is what the principal wants to do.
type Action string

// The actions.
const (
	Read   Action = "read"
	Search Action = "search"
	// Write is adding to a patient's record what carefront itself keeps:
	// a message (Communication), a booked visit (Appointment), a
	// check-in's answers (QuestionnaireResponse) or a request to the care
	// team (Task).
	Write Action = "write"
)

// writeTypes are the types Write applies to.
var writeTypes = []string{"Communication", "Appointment", "QuestionnaireResponse", "Task"}

// Target is what the action is on. For a read it is one resource with the
// patients whose compartment it is in; for a search, the resource type.
type Target struct {
	Type     string
	ID       string
	Patients []string
	Labels   []string // meta.security as system|code
	// Codes are the resource's codes ("system|code": its code, value,
	// medication, type), for consents that name codes.
	Codes []string
	// Result, for an Observation or DiagnosticReport, is what the release
	// rule reads of it.
	Result *ResultFacts
	// Focus, for a Task (a request to the care team), is the type it is
	// about (MedicationRequest for a refill): what a caregiver's grant
	// must cover for it.
	Focus string
	// Pool, for a message (Communication) of a messaging thread, is the
	// pool the thread is with.
	Pool string
}

// Decision is Decide's answer. Reason is a code for the audit trail.
type Decision struct {
	Permit bool
	Reason string
	// Compartment, on a permitted search, is the patient whose compartment
	// the search must be limited to; empty means the type holds no
	// patient data.
	Compartment string
	// Obligation, on a permitted read, is what must be done with the
	// resource before it is shown (hold it until reviewed).
	Obligation Obligation
	// Consent, when a patient's consent decided, is its id.
	Consent string
	// Hide, on a permitted search, lists the security labels
	// ("system|code") that hide a resource from this principal whatever
	// else it holds: a teenager's sensitive records from a parent, what a
	// caregiver's grant never shares, Part 2 records from anyone no
	// consent names. The source may leave such resources out before the
	// search runs (fhir.Query.ExcludeLabels), so totals do not count
	// them; every returned resource is still decided on its own.
	Hide []string
}

// Roles carefront itself acts in, besides staff roles.
const (
	// RoleOperator is a person running carefront's commands on the server
	// (carefront fhir read/search, accounts invite): they administer the
	// data and may read and search all of it; every use is audited.
	RoleOperator = "operator"
	// RoleIdentityProofing is activation checking a date of birth and last
	// name against one Patient record: it may read Patient resources only.
	RoleIdentityProofing = "identity-proofing"
)

// Reasons.
const (
	ReasonOperator         = "operator-command"
	ReasonIdentityProofing = "identity-proofing"
	ReasonOwnRecord        = "own-record"
	ReasonDirectory        = "directory-resource"
	ReasonNoPatient        = "no-patient-context"
	ReasonOtherPatient     = "other-patient"
	ReasonNotPatientData   = "type-not-permitted"
	ReasonConsentDenied    = "consent-denied"
	ReasonLinkKind         = "link-kind-not-shared"
	ReasonPart2            = "part2-consent-required"
	ReasonCare             = "care-relationship"
	ReasonNoCare           = "no-care-relationship"
	ReasonStaffRole        = "staff-role-not-permitted"
	ReasonPoolMember       = "message-pool-member"
)

// Staff roles.
const (
	RoleClinician       = "clinician"
	RoleSupport         = "support"
	RoleSecurityOfficer = "security-officer"
	RoleAdmin           = "admin"
)

// directoryTypes hold no patient's data: who and where care is given, and
// what is prescribed or asked. A patient may read them when their own
// records refer to them.
var directoryTypes = []string{
	"HealthcareService", "Location", "Medication", "Organization", "Practitioner",
	"PractitionerRole", "Questionnaire", "Schedule", "Slot",
}

// Decide answers whether p may take action a on t.
func Decide(_ context.Context, p Principal, a Action, t Target) Decision {
	writable := slices.Contains(writeTypes, t.Type) || p.Role == RoleClinician && slices.Contains(clinicianWrites, t.Type)
	if a == Write && (!writable || p.Link != nil || p.Client != "") {
		// Share links and apps only read.
		return Decision{Reason: ReasonNotPatientData}
	}
	if d, ok := decidePool(p, a, t); ok {
		return d
	}
	switch p.Role {
	case RoleOperator:
		if a == Read || a == Search {
			return Decision{Permit: true, Reason: ReasonOperator}
		}
	case RoleIdentityProofing:
		if a == Read && t.Type == "Patient" {
			return Decision{Permit: true, Reason: ReasonIdentityProofing}
		}
		return Decision{Reason: ReasonNotPatientData}
	case RoleClinician:
		return decideClinician(p, a, t)
	case RoleSupport, RoleSecurityOfficer, RoleAdmin:
		return Decision{Reason: ReasonStaffRole} // staff other than clinicians see no clinical data
	}
	if p.Role != "" {
		return Decision{Reason: ReasonStaffRole}
	}
	if p.Patient == "" {
		return Decision{Reason: ReasonNoPatient}
	}
	if p.Link != nil && !slices.Contains(p.Link.Types, t.Type) && t.Type != "Patient" && !slices.Contains(directoryTypes, t.Type) {
		return Decision{Reason: ReasonLinkKind}
	}
	own := ReasonOwnRecord
	if p.Caregiver && p.Proxy == nil {
		return Decision{Reason: ReasonProxyNoGrant}
	}
	if p.Proxy != nil {
		if why := p.Proxy.limit(p.At, a, t); why != "" {
			return Decision{Reason: why}
		}
		if d, denied := consented(p, t); denied {
			return d
		}
		own = ReasonProxy
	}
	directory := slices.Contains(directoryTypes, t.Type)
	switch a {
	case Write:
		if slices.Contains(t.Patients, p.Patient) {
			return Decision{Permit: true, Reason: own}
		}
		return Decision{Reason: ReasonOtherPatient}
	case Read:
		if slices.Contains(t.Patients, p.Patient) {
			return release(p.Policy, t, Decision{Permit: true, Reason: own})
		}
		if directory {
			return Decision{Permit: true, Reason: ReasonDirectory}
		}
		if len(t.Patients) > 0 {
			return Decision{Reason: ReasonOtherPatient}
		}
		return Decision{Reason: ReasonNotPatientData}
	case Search:
		if fhir.InPatientCompartment(t.Type) {
			return Decision{Permit: true, Reason: own, Compartment: p.Patient, Hide: hidden(p, t.Type)}
		}
		if directory {
			return Decision{Permit: true, Reason: ReasonDirectory}
		}
		return Decision{Reason: ReasonNotPatientData}
	}
	return Decision{Reason: ReasonNotPatientData}
}

// decidePool is the messaging rule for staff: a clinician or support
// staff member reads and writes the messages of the threads of the pools
// they answer, whatever their care relationships (the patient wrote to
// the pool), and reads the Patient resource of the patient who wrote (the
// name and birth date that tell one patient from another), nothing else
// of the record. It applies (ok) to staff, and to the messages and the
// Patient reached through a pool only.
func decidePool(p Principal, a Action, t Target) (Decision, bool) {
	pooled := t.Type == "Communication" || (t.Type == "Patient" && a == Read)
	if !pooled || t.Pool == "" || (p.Role != RoleClinician && p.Role != RoleSupport) || a == Search {
		return Decision{}, false
	}
	if !slices.Contains(p.Pools, t.Pool) {
		return Decision{}, false
	}
	if p.Patient != "" && !slices.Contains(t.Patients, p.Patient) {
		return Decision{Reason: ReasonOtherPatient}, true
	}
	return Decision{Permit: true, Reason: ReasonPoolMember}, true
}

// decideClinician is the staff rule: a clinician reads and searches the
// compartment of a patient they have a care relationship with, whole (the
// patient's release choice is about what the patient sees first, not
// what their clinicians see), and directory resources.
// clinicianWrites are the types a clinician with a care relationship
// writes through the portal; everything else they change in the EHR.
var clinicianWrites = []string{"Task", "Encounter", "DocumentReference"}

func decideClinician(p Principal, a Action, t Target) Decision {
	switch {
	case p.Patient == "":
		return Decision{Reason: ReasonNoPatient}
	case !p.CareRelationship || p.Practitioner == "":
		return Decision{Reason: ReasonNoCare}
	}
	if d, denied := consented(p, t); denied {
		return d
	}
	directory := slices.Contains(directoryTypes, t.Type)
	switch a {
	case Write:
		// Answering the patient's requests (Task), and writing back a
		// video visit they held: its Encounter, its summary
		// (DocumentReference) and its follow-up Tasks.
		if slices.Contains(clinicianWrites, t.Type) && slices.Contains(t.Patients, p.Patient) {
			return Decision{Permit: true, Reason: ReasonCare}
		}
	case Read:
		if slices.Contains(t.Patients, p.Patient) {
			return Decision{Permit: true, Reason: ReasonCare}
		}
		if directory {
			return Decision{Permit: true, Reason: ReasonDirectory}
		}
		if len(t.Patients) > 0 {
			return Decision{Reason: ReasonOtherPatient}
		}
	case Search:
		if fhir.InPatientCompartment(t.Type) {
			return Decision{Permit: true, Reason: ReasonCare, Compartment: p.Patient, Hide: hidden(p, t.Type)}
		}
		if directory {
			return Decision{Permit: true, Reason: ReasonDirectory}
		}
	}
	return Decision{Reason: ReasonNotPatientData}
}

// consented applies the patient's consents to anyone but the patient: a
// consent that denies what the relationship allowed refuses it, naming
// the consent. A consent never grants more than the relationship does.
//
// A record under 42 CFR Part 2 goes to no one but the patient without a
// consent that names them and permits it.
func consented(p Principal, t Target) (Decision, bool) {
	if slices.Contains(directoryTypes, t.Type) {
		return Decision{}, false
	}
	part2 := slices.Contains(t.Labels, actCode+"|"+Part2)
	if (p.Policy == nil || len(p.Policy.Consents) == 0) && !part2 {
		return Decision{}, false
	}
	var out int
	var id string
	if p.Policy != nil {
		out, id = EvaluateConsents(p.Policy.Consents, Request{Actors: p.Actors(), Action: "access", Purpose: p.purpose(),
			Type: t.Type, Codes: t.Codes, Labels: t.Labels, At: p.At})
	}
	switch {
	case out == ConsentDeny:
		return Decision{Reason: ReasonConsentDenied, Consent: id}, true
	case part2 && (out != ConsentPermit || !namesActor(p.Policy.Consents, id, p.Actors())):
		return Decision{Reason: ReasonPart2}, true
	}
	return Decision{}, false
}

// namesActor reports whether consent id names one of actors in one of
// its provisions (a Part 2 consent names its recipient).
func namesActor(cs []Consent, id string, actors []string) bool {
	var walk func(p *Provision) bool
	walk = func(p *Provision) bool {
		if p.Permit && anyIn(p.Actors, actors) {
			return true
		}
		for i := range p.Provisions {
			if walk(&p.Provisions[i]) {
				return true
			}
		}
		return false
	}
	for i := range cs {
		if cs[i].ID == id && walk(&cs[i].Provision) {
			return true
		}
	}
	return false
}

// Link is a share link as the decision applies it.
type Link struct {
	ID    string
	Types []string // the FHIR types it holds
}
