// Package fhir holds carefront's FHIR R4 wire layer: resources kept as their
// original JSON (nothing dropped), the Bundle and OperationOutcome shapes,
// references, FHIR dates as time ranges, the search parameters carefront
// indexes, and the Patient compartment.
//
// Typed structs cover only the fields the code reads; everything else stays
// as raw JSON so extensions and primitive extensions (`_field`) survive a
// round trip untouched.
package fhir

import (
	"regexp"
	"slices"
)

// idPattern is FHIR R4's id datatype: 1 to 64 of A-Z a-z 0-9 - and '.'.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// ValidID reports whether id is a valid FHIR logical id.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// KnownType reports whether name is a FHIR R4 resource type.
func KnownType(name string) bool {
	_, ok := slices.BinarySearch(resourceTypes, name)
	return ok
}

// resourceTypes is every resource type of FHIR R4 (4.0.1), sorted.
var resourceTypes = []string{
	"Account", "ActivityDefinition", "AdverseEvent", "AllergyIntolerance", "Appointment",
	"AppointmentResponse", "AuditEvent", "Basic", "Binary", "BiologicallyDerivedProduct",
	"BodyStructure", "Bundle", "CapabilityStatement", "CarePlan", "CareTeam", "CatalogEntry",
	"ChargeItem", "ChargeItemDefinition", "Claim", "ClaimResponse", "ClinicalImpression",
	"CodeSystem", "Communication", "CommunicationRequest", "CompartmentDefinition", "Composition",
	"ConceptMap", "Condition", "Consent", "Contract", "Coverage", "CoverageEligibilityRequest",
	"CoverageEligibilityResponse", "DetectedIssue", "Device", "DeviceDefinition", "DeviceMetric",
	"DeviceRequest", "DeviceUseStatement", "DiagnosticReport", "DocumentManifest",
	"DocumentReference", "EffectEvidenceSynthesis", "Encounter", "Endpoint", "EnrollmentRequest",
	"EnrollmentResponse", "EpisodeOfCare", "EventDefinition", "Evidence", "EvidenceVariable",
	"ExampleScenario", "ExplanationOfBenefit", "FamilyMemberHistory", "Flag", "Goal",
	"GraphDefinition", "Group", "GuidanceResponse", "HealthcareService", "ImagingStudy",
	"Immunization", "ImmunizationEvaluation", "ImmunizationRecommendation", "ImplementationGuide",
	"InsurancePlan", "Invoice", "Library", "Linkage", "List", "Location", "Measure", "MeasureReport",
	"Media", "Medication", "MedicationAdministration", "MedicationDispense", "MedicationKnowledge",
	"MedicationRequest", "MedicationStatement", "MedicinalProduct", "MedicinalProductAuthorization",
	"MedicinalProductContraindication", "MedicinalProductIndication", "MedicinalProductIngredient",
	"MedicinalProductInteraction", "MedicinalProductManufactured", "MedicinalProductPackaged",
	"MedicinalProductPharmaceutical", "MedicinalProductUndesirableEffect", "MessageDefinition",
	"MessageHeader", "MolecularSequence", "NamingSystem", "NutritionOrder", "Observation",
	"ObservationDefinition", "OperationDefinition", "OperationOutcome", "Organization",
	"OrganizationAffiliation", "Parameters", "Patient", "PaymentNotice", "PaymentReconciliation",
	"Person", "PlanDefinition", "Practitioner", "PractitionerRole", "Procedure", "Provenance",
	"Questionnaire", "QuestionnaireResponse", "RelatedPerson", "RequestGroup", "ResearchDefinition",
	"ResearchElementDefinition", "ResearchStudy", "ResearchSubject", "RiskAssessment",
	"RiskEvidenceSynthesis", "Schedule", "SearchParameter", "ServiceRequest", "Slot", "Specimen",
	"SpecimenDefinition", "StructureDefinition", "StructureMap", "Subscription", "Substance",
	"SubstanceNucleicAcid", "SubstancePolymer", "SubstanceProtein", "SubstanceReferenceInformation",
	"SubstanceSourceMaterial", "SubstanceSpecification", "SupplyDelivery", "SupplyRequest", "Task",
	"TerminologyCapabilities", "TestReport", "TestScript", "ValueSet", "VerificationResult",
	"VisionPrescription",
}
