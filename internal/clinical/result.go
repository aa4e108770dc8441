package clinical

import (
	"slices"
	"time"

	"carefront/internal/access"
	"carefront/internal/fhir"
)

// ReviewTag is the meta.tag an EHR (or carefront, later) puts on a result
// its care team has reviewed, for results with no resultsInterpreter.
const ReviewTag = "https://carefront.example/CodeSystem/result-review|reviewed"

// categoryCodes maps the category codes results carry (FHIR's observation
// category, HL7 v2 table 0074 diagnostic service sections, and LOINC's
// report categories) to the release categories a patient chooses among.
var categoryCodes = map[string]string{
	"laboratory": access.CategoryLab, "LAB": access.CategoryLab, "CH": access.CategoryLab, "HM": access.CategoryLab,
	"MB": access.CategoryLab, "SR": access.CategoryLab, "IMM": access.CategoryLab, "BLB": access.CategoryLab,
	"TX": access.CategoryLab, "URN": access.CategoryLab, "SP": access.CategoryPathology, "LP7839-6": access.CategoryPathology,
	"imaging": access.CategoryImaging, "RAD": access.CategoryImaging, "CT": access.CategoryImaging, "MR": access.CategoryImaging,
	"US": access.CategoryImaging, "NMR": access.CategoryImaging, "NMS": access.CategoryImaging, "RX": access.CategoryImaging,
	"VUS": access.CategoryImaging, "XRC": access.CategoryImaging, "LP29684-5": access.CategoryImaging,
	"PAT": access.CategoryPathology, "CP": access.CategoryPathology, "CY": access.CategoryPathology,
	"GE": access.CategoryGenetic, "LP7857-8": access.CategoryGenetic,
}

// resultCategories returns the release categories of a decoded result.
func resultCategories(tree map[string]any) []string {
	var out []string
	for _, v := range fhir.Values(tree, "category.coding") {
		c, _ := v.(map[string]any)
		code, _ := c["code"].(string)
		if cat, ok := categoryCodes[code]; ok && !slices.Contains(out, cat) {
			out = append(out, cat)
		}
	}
	return out
}

// reportDocuments maps the LOINC document types of reports kept as
// documents (US Core servers often give pathology and imaging reports as
// DocumentReference too) to release categories.
var reportDocuments = map[string]string{
	"11526-1": access.CategoryPathology, "11529-5": access.CategoryPathology, "60568-3": access.CategoryPathology,
	"60567-5": access.CategoryPathology, "18748-4": access.CategoryImaging, "18726-0": access.CategoryImaging,
	"18782-3": access.CategoryImaging, "51969-4": access.CategoryGenetic, "55232-3": access.CategoryGenetic,
	"LP29684-5": access.CategoryImaging, "LP7839-6": access.CategoryPathology,
}

// documentFacts returns the release facts of a DocumentReference that is
// a report (by its type or category), or nil for other documents (visit
// summaries, letters), which the rule leaves alone.
func documentFacts(tree map[string]any) *access.ResultFacts {
	var cats []string
	for _, path := range []string{"type.coding", "category.coding"} {
		for _, v := range fhir.Values(tree, path) {
			c, _ := v.(map[string]any)
			code, _ := c["code"].(string)
			if cat, ok := reportDocuments[code]; ok && !slices.Contains(cats, cat) {
				cats = append(cats, cat)
			}
		}
	}
	if len(cats) == 0 {
		return nil
	}
	f := &access.ResultFacts{Categories: cats, Status: "final", Reviewed: hasReviewTag(tree)}
	if s, _ := tree["docStatus"].(string); s != "" {
		f.Status = s
	}
	if s, ok := tree["date"].(string); ok {
		if r, ok := fhir.ParseDate(s); ok {
			f.Issued = time.UnixMicro(r.Lo)
		}
	}
	return f
}

func hasReviewTag(tree map[string]any) bool {
	meta, _ := tree["meta"].(map[string]any)
	for _, v := range fhir.Values(meta, "tag") {
		c, _ := v.(map[string]any)
		sys, _ := c["system"].(string)
		code, _ := c["code"].(string)
		if sys+"|"+code == ReviewTag {
			return true
		}
	}
	return false
}

// ResultFacts returns what the release rule reads of a decoded
// Observation, DiagnosticReport or report kept as a DocumentReference, and
// nil for anything else.
func ResultFacts(typ string, tree map[string]any) *access.ResultFacts {
	if typ == "DocumentReference" {
		return documentFacts(tree)
	}
	if typ != "Observation" && typ != "DiagnosticReport" {
		return nil
	}
	f := &access.ResultFacts{Categories: resultCategories(tree)}
	f.Status, _ = tree["status"].(string)
	for _, k := range []string{"issued", "effectiveDateTime", "effectiveInstant"} {
		if s, ok := tree[k].(string); ok {
			if r, ok := fhir.ParseDate(s); ok {
				f.Issued = time.UnixMicro(r.Lo)
				break
			}
		}
	}
	if f.Issued.IsZero() {
		if p, ok := tree["effectivePeriod"].(map[string]any); ok {
			if s, ok := p["start"].(string); ok {
				if r, ok := fhir.ParseDate(s); ok {
					f.Issued = time.UnixMicro(r.Lo)
				}
			}
		}
	}
	if ri, ok := tree["resultsInterpreter"].([]any); ok && len(ri) > 0 {
		f.Reviewed = true
	}
	f.Reviewed = f.Reviewed || hasReviewTag(tree)
	return f
}
