package demo

import (
	"context"
	"encoding/json"
	"fmt"

	"carefront/internal/clinical/store"
	"carefront/internal/fhir"
)

// CheckInForms is the demo clinic's map of visit kinds to the
// Questionnaire filled in at check-in (the demo's own bookings use the
// clinic's visit types; its earlier appointments SNOMED's follow-up).
const CheckInForms = "follow-up=demo-previsit-followup, checkup=demo-previsit-followup, 185389009=demo-previsit-followup, new-concern=demo-previsit-new-concern"

func ext(url string, v any) obj {
	switch v := v.(type) {
	case int:
		return obj{"url": url, "valueInteger": v}
	default:
		return obj{"url": url, "valueDecimal": v}
	}
}

const (
	minValue = "http://hl7.org/fhir/StructureDefinition/minValue"
	maxValue = "http://hl7.org/fhir/StructureDefinition/maxValue"
)

// SeedClinic writes the demo clinic's own data beside the population:
// the pre-visit Questionnaires check-in shows, the health plan with
// Maria's and Walter's insurance, and the three pharmacies refills go to.
// It writes the same each start (no new versions).
func SeedClinic(ctx context.Context, st *store.Store) error {
	yes := func(q string) []any { return []any{obj{"question": q, "operator": "=", "answerBoolean": true}} }
	res := []obj{
		{"resourceType": "Organization", "id": "demo-plan", "active": true, "name": "Blue Valley Health Plan (demo)",
			"type": []any{concept("http://terminology.hl7.org/CodeSystem/organization-type", "pay", "Payer")}},
		{"resourceType": "Coverage", "id": "demo-maria-coverage", "status": "active",
			"beneficiary": ref("Patient", Maria), "payor": []any{obj{"reference": "Organization/demo-plan", "display": "Blue Valley Health Plan (demo)"}},
			"class": []any{obj{"type": concept("http://terminology.hl7.org/CodeSystem/coverage-class", "plan", "Plan"), "value": "BV-GOLD", "name": "Gold PPO"}}},
		{"resourceType": "Coverage", "id": "demo-walter-coverage", "status": "active",
			"beneficiary": ref("Patient", Walter), "payor": []any{obj{"reference": "Organization/demo-plan", "display": "Blue Valley Health Plan (demo)"}},
			"class": []any{obj{"type": concept("http://terminology.hl7.org/CodeSystem/coverage-class", "plan", "Plan"), "value": "BV-MEDI", "name": "Medicare Advantage"}}},
		{"resourceType": "Questionnaire", "id": "demo-previsit-followup", "url": "https://carefront.example/demo/Questionnaire/previsit-followup",
			"status": "active", "title": "Before your follow-up visit", "item": []any{
				obj{"linkId": "topics", "type": "text", "text": "What would you like to talk about at this visit?", "required": true, "maxLength": 1000},
				obj{"linkId": "pain", "type": "boolean", "text": "Are you in pain today?", "required": true},
				obj{"linkId": "pain-level", "type": "integer", "text": "How bad is the pain, from 0 (none) to 10 (the worst)?", "required": true,
					"extension": []any{ext(minValue, 0), ext(maxValue, 10)}, "enableWhen": yes("pain")},
				obj{"linkId": "sugar", "type": "decimal", "text": "Your last blood sugar reading, in mg/dL (if you check it)",
					"extension": []any{ext(minValue, 20.0), ext(maxValue, 800.0)}},
				obj{"linkId": "sugar-date", "type": "date", "text": "When was that reading?",
					"enableWhen": []any{obj{"question": "sugar", "operator": "exists", "answerBoolean": true}}},
				obj{"linkId": "smoke", "type": "choice", "text": "Do you smoke?", "answerOption": []any{
					obj{"valueCoding": coding(snomed, "266919005", "Never")},
					obj{"valueCoding": coding(snomed, "8517006", "I used to")},
					obj{"valueCoding": coding(snomed, "77176002", "Yes")}}},
				obj{"linkId": "sleep", "type": "open-choice", "text": "How have you been sleeping?", "answerOption": []any{
					obj{"valueString": "Well"}, obj{"valueString": "Not so well"}}},
				obj{"linkId": "other", "type": "string", "text": "Anything else we should know before the visit?", "maxLength": 300},
			}},
		{"resourceType": "Questionnaire", "id": "demo-previsit-new-concern", "url": "https://carefront.example/demo/Questionnaire/previsit-new-concern",
			"status": "active", "title": "Before your visit about a new concern", "item": []any{
				obj{"linkId": "what", "type": "text", "text": "What is the concern?", "required": true, "maxLength": 1000},
				obj{"linkId": "since", "type": "date", "text": "When did it start?", "required": true},
				obj{"linkId": "severity", "type": "choice", "text": "How much does it bother you?", "required": true, "answerOption": []any{
					obj{"valueString": "A little"}, obj{"valueString": "Quite a lot"}, obj{"valueString": "Very much"}}},
				obj{"linkId": "fever", "type": "boolean", "text": "Have you had a fever?"},
				obj{"linkId": "temperature", "type": "decimal", "text": "Highest temperature (°F)",
					"extension": []any{ext(minValue, 95.0), ext(maxValue, 110.0)}, "enableWhen": yes("fever")},
			}},
	}
	for i, ph := range []struct{ name, street string }{
		{"Main Street Pharmacy (demo)", "120 Main Street"}, {"Riverside Drugs (demo)", "8 River Road"}, {"Oak Avenue Pharmacy (demo)", "55 Oak Avenue"},
	} {
		res = append(res, obj{"resourceType": "Organization", "id": fmt.Sprintf("demo-pharmacy-%d", i+1), "active": true, "name": ph.name,
			"type":    []any{concept("http://terminology.hl7.org/CodeSystem/v3-RoleCode", "PHARM", "pharmacy")},
			"address": []any{obj{"line": []any{ph.street}, "city": "Springfield", "state": "ZZ", "postalCode": "00000"}}})
	}
	b := &fhir.Bundle{ResourceType: "Bundle", Type: "transaction"}
	for _, r := range res {
		raw, err := json.Marshal(r)
		if err != nil {
			return err
		}
		b.Entry = append(b.Entry, &fhir.Entry{Resource: raw, Request: &fhir.EntryRequest{Method: "PUT", URL: fmt.Sprintf("%s/%s", r["resourceType"], r["id"])}})
	}
	if _, err := st.Process(ctx, b, store.BundleOptions{}); err != nil {
		return fmt.Errorf("demo check-in data: %w", err)
	}
	return nil
}
