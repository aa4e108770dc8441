package fhir

import (
	"sort"
	"strings"
)

// Kind is how a search parameter matches (FHIR search parameter types).
type Kind int

// The kinds carefront indexes.
const (
	Token Kind = iota + 1
	Reference
	Date
)

func (k Kind) String() string {
	switch k {
	case Token:
		return "token"
	case Reference:
		return "reference"
	case Date:
		return "date"
	}
	return "unknown"
}

// Param is one search parameter of one resource type.
type Param struct {
	Name string
	Kind Kind
	// Paths lead from the resource to the values, '.' between elements;
	// "x[x]" stands for a choice element (effectiveDateTime, effectivePeriod).
	Paths []string
	// Target, for a reference parameter, is the one type it may point to
	// (e.g. Patient for "patient"); empty admits any type.
	Target string
}

// Parameters every resource type has.
var commonParams = []Param{
	{Name: "_security", Kind: Token, Paths: []string{"meta.security"}},
	{Name: "_tag", Kind: Token, Paths: []string{"meta.tag"}},
}

// paramSpecs lists, per resource type, "name kind path[,path] [Target]".
// The names and paths are FHIR R4's own search parameters, limited to the
// ones the portal and SMART apps (US Core) use.
var paramSpecs = map[string][]string{
	"AllergyIntolerance": {"patient reference patient Patient", "clinical-status token clinicalStatus",
		"verification-status token verificationStatus", "category token category", "code token code",
		"criticality token criticality", "date date recordedDate", "onset date onset[x]",
		"recorder reference recorder", "asserter reference asserter", "identifier token identifier"},
	"Appointment": {"patient reference participant.actor Patient", "actor reference participant.actor",
		"status token status", "date date start", "service-type token serviceType",
		"practitioner reference participant.actor Practitioner", "location reference participant.actor Location",
		"slot reference slot", "identifier token identifier"},
	"Binary": {},
	"CarePlan": {"patient reference subject Patient", "subject reference subject", "category token category",
		"status token status", "date date period", "performer reference activity.detail.performer",
		"goal reference goal", "care-team reference careTeam", "encounter reference encounter", "identifier token identifier"},
	"CareTeam": {"patient reference subject Patient", "subject reference subject", "status token status",
		"category token category", "participant reference participant.member", "date date period", "identifier token identifier"},
	"Claim": {"patient reference patient Patient", "payee reference payee.party", "status token status",
		"created date created", "use token use", "encounter reference item.encounter", "identifier token identifier"},
	"Communication": {"patient reference subject Patient", "subject reference subject", "sender reference sender",
		"recipient reference recipient", "status token status", "category token category", "sent date sent",
		"received date received", "encounter reference encounter", "part-of reference partOf", "identifier token identifier"},
	"Condition": {"patient reference subject Patient", "subject reference subject", "clinical-status token clinicalStatus",
		"verification-status token verificationStatus", "category token category", "code token code",
		"onset-date date onset[x]", "abatement-date date abatement[x]", "recorded-date date recordedDate",
		"asserter reference asserter", "encounter reference encounter", "identifier token identifier"},
	"Consent": {"patient reference patient Patient", "status token status", "category token category",
		"scope token scope", "period date provision.period", "date date dateTime", "actor reference provision.actor.reference",
		"identifier token identifier"},
	"Coverage": {"patient reference beneficiary Patient", "beneficiary reference beneficiary",
		"policy-holder reference policyHolder", "subscriber reference subscriber", "payor reference payor",
		"status token status", "type token type", "identifier token identifier"},
	"Device": {"patient reference patient Patient", "type token type", "status token status", "identifier token identifier"},
	"DiagnosticReport": {"patient reference subject Patient", "subject reference subject", "category token category",
		"code token code", "date date effective[x]", "status token status", "issued date issued",
		"result reference result", "performer reference performer", "encounter reference encounter", "identifier token identifier"},
	"DocumentReference": {"patient reference subject Patient", "subject reference subject", "type token type",
		"category token category", "status token status", "date date date", "period date context.period",
		"author reference author", "encounter reference context.encounter", "identifier token identifier"},
	"Encounter": {"patient reference subject Patient", "subject reference subject", "class token class",
		"type token type", "status token status", "date date period", "participant reference participant.individual",
		"practitioner reference participant.individual Practitioner", "location reference location.location",
		"service-provider reference serviceProvider", "reason-code token reasonCode", "identifier token identifier"},
	"ExplanationOfBenefit": {"patient reference patient Patient", "payee reference payee.party", "status token status",
		"created date created", "claim reference claim", "encounter reference item.encounter", "identifier token identifier"},
	"Goal": {"patient reference subject Patient", "subject reference subject", "lifecycle-status token lifecycleStatus",
		"achievement-status token achievementStatus", "category token category", "target-date date target.due[x]",
		"start-date date start[x]", "identifier token identifier"},
	"ImagingStudy": {"patient reference subject Patient", "subject reference subject", "status token status",
		"started date started", "modality token series.modality", "encounter reference encounter", "identifier token identifier"},
	"Immunization": {"patient reference patient Patient", "status token status", "vaccine-code token vaccineCode",
		"date date occurrence[x]", "performer reference performer.actor", "location reference location", "identifier token identifier"},
	"Location":   {"identifier token identifier", "type token type", "status token status", "organization reference managingOrganization"},
	"Medication": {"code token code", "status token status", "form token form", "identifier token identifier"},
	"MedicationRequest": {"patient reference subject Patient", "subject reference subject", "status token status",
		"intent token intent", "category token category", "code token medication[x]", "medication reference medication[x]",
		"authoredon date authoredOn", "requester reference requester", "encounter reference encounter", "identifier token identifier"},
	"MedicationStatement": {"patient reference subject Patient", "subject reference subject", "status token status",
		"category token category", "code token medication[x]", "medication reference medication[x]",
		"effective date effective[x]", "source reference informationSource", "context reference context", "identifier token identifier"},
	"Observation": {"patient reference subject Patient", "subject reference subject", "category token category",
		"code token code", "date date effective[x]", "status token status", "performer reference performer",
		"encounter reference encounter", "based-on reference basedOn", "has-member reference hasMember",
		"derived-from reference derivedFrom", "combo-code token code,component.code", "identifier token identifier"},
	"Organization": {"identifier token identifier", "type token type", "partof reference partOf", "active token active"},
	"Patient": {"identifier token identifier", "gender token gender", "birthdate date birthDate",
		"general-practitioner reference generalPractitioner", "organization reference managingOrganization",
		"link reference link.other", "active token active", "death-date date deceased[x]"},
	"Practitioner": {"identifier token identifier", "gender token gender", "active token active"},
	"PractitionerRole": {"practitioner reference practitioner", "organization reference organization",
		"location reference location", "role token code", "specialty token specialty", "active token active", "identifier token identifier"},
	"Procedure": {"patient reference subject Patient", "subject reference subject", "code token code",
		"status token status", "category token category", "date date performed[x]", "performer reference performer.actor",
		"encounter reference encounter", "identifier token identifier"},
	"Provenance": {"patient reference target Patient", "target reference target", "agent reference agent.who",
		"recorded date recorded", "identifier token identifier"},
	"Questionnaire": {"status token status", "code token item.code", "identifier token identifier", "date date date"},
	"QuestionnaireResponse": {"patient reference subject Patient", "subject reference subject", "status token status",
		"authored date authored", "author reference author", "questionnaire reference questionnaire",
		"encounter reference encounter", "identifier token identifier"},
	"RelatedPerson": {"patient reference patient Patient", "relationship token relationship",
		"active token active", "identifier token identifier"},
	"Schedule": {"actor reference actor", "active token active", "service-type token serviceType", "date date planningHorizon"},
	"Slot":     {"schedule reference schedule", "status token status", "start date start", "service-type token serviceType"},
	"Task": {"patient reference for Patient", "subject reference for", "owner reference owner",
		"requester reference requester", "status token status", "intent token intent", "code token code",
		"authored-on date authoredOn", "period date executionPeriod", "focus reference focus",
		"part-of reference partOf", "identifier token identifier"},
	"ServiceRequest": {"patient reference subject Patient", "subject reference subject", "status token status",
		"category token category", "code token code", "authored date authoredOn", "requester reference requester",
		"performer reference performer", "encounter reference encounter", "identifier token identifier"},
	"FamilyMemberHistory": {"patient reference patient Patient", "status token status", "code token condition.code",
		"date date date", "relationship token relationship"},
	"Specimen": {"patient reference subject Patient", "subject reference subject", "type token type",
		"collected date collection.collected[x]", "identifier token identifier"},
	"MedicationDispense": {"patient reference subject Patient", "subject reference subject", "status token status",
		"code token medication[x]", "medication reference medication[x]", "whenhandedover date whenHandedOver",
		"prescription reference authorizingPrescription", "receiver reference receiver", "identifier token identifier"},
	"MedicationAdministration": {"patient reference subject Patient", "subject reference subject", "status token status",
		"code token medication[x]", "effective-time date effective[x]", "performer reference performer.actor",
		"request reference request", "identifier token identifier"},
}

// compartmentSpecs lists, per type, the parameters that put a resource in a
// patient's compartment (FHIR R4's Patient CompartmentDefinition). Task is
// not in R4's list; carefront adds Task.for so a patient sees tasks set for
// them (questionnaires to fill in).
var compartmentSpecs = map[string][]string{
	"AllergyIntolerance":       {"patient", "recorder", "asserter"},
	"Appointment":              {"actor"},
	"CarePlan":                 {"patient", "performer"},
	"CareTeam":                 {"patient", "participant"},
	"Claim":                    {"patient", "payee"},
	"Communication":            {"subject", "sender", "recipient"},
	"Condition":                {"patient", "asserter"},
	"Consent":                  {"patient"},
	"Coverage":                 {"policy-holder", "subscriber", "beneficiary", "payor"},
	"Device":                   {"patient"},
	"DiagnosticReport":         {"subject"},
	"DocumentReference":        {"subject", "author"},
	"Encounter":                {"patient"},
	"ExplanationOfBenefit":     {"patient", "payee"},
	"FamilyMemberHistory":      {"patient"},
	"Goal":                     {"patient"},
	"ImagingStudy":             {"patient"},
	"Immunization":             {"patient"},
	"MedicationAdministration": {"patient", "performer", "subject"},
	"MedicationDispense":       {"subject", "patient", "receiver"},
	"MedicationRequest":        {"subject"},
	"MedicationStatement":      {"subject"},
	"Observation":              {"subject", "performer"},
	"Patient":                  {"link"},
	"Procedure":                {"patient", "performer"},
	"Provenance":               {"patient"},
	"QuestionnaireResponse":    {"subject", "author"},
	"RelatedPerson":            {"patient"},
	"Schedule":                 {"actor"},
	"ServiceRequest":           {"subject", "performer"},
	"Specimen":                 {"subject"},
	"Task":                     {"patient"},
}

var registry = buildRegistry()

func buildRegistry() map[string]map[string]Param {
	reg := map[string]map[string]Param{}
	for typ, specs := range paramSpecs {
		m := map[string]Param{}
		for _, p := range commonParams {
			m[p.Name] = p
		}
		for _, s := range specs {
			f := strings.Fields(s)
			p := Param{Name: f[0], Paths: strings.Split(f[2], ",")}
			switch f[1] {
			case "token":
				p.Kind = Token
			case "reference":
				p.Kind = Reference
			case "date":
				p.Kind = Date
			default:
				panic("fhir: bad kind in " + s)
			}
			if len(f) == 4 {
				p.Target = f[3]
			}
			m[p.Name] = p
		}
		reg[typ] = m
	}
	for typ, names := range compartmentSpecs {
		for _, n := range names {
			if p, ok := reg[typ][n]; !ok || p.Kind != Reference {
				panic("fhir: compartment parameter " + typ + "." + n + " is not a reference parameter")
			}
		}
	}
	return reg
}

// Params returns the indexed search parameters of a type, by name. Types
// carefront does not index have only the common ones.
func Params(typ string) map[string]Param {
	if m, ok := registry[typ]; ok {
		return m
	}
	m := map[string]Param{}
	for _, p := range commonParams {
		m[p.Name] = p
	}
	return m
}

// LookupParam returns one search parameter of a type.
func LookupParam(typ, name string) (Param, bool) {
	p, ok := Params(typ)[name]
	return p, ok
}

// ParamNames returns the names of a type's indexed parameters, sorted.
func ParamNames(typ string) []string {
	var out []string
	for n := range Params(typ) {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// InPatientCompartment reports whether resources of a type can belong to a
// patient's compartment at all.
func InPatientCompartment(typ string) bool {
	_, ok := compartmentSpecs[typ]
	return ok
}

// CompartmentTypes lists, sorted, the resource types that can belong to a
// patient's compartment.
func CompartmentTypes() []string {
	out := make([]string, 0, len(compartmentSpecs))
	for t := range compartmentSpecs {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}
