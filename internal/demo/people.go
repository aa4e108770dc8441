package demo

import (
	"encoding/base64"
	"fmt"
	"math"
	"time"
)

func (b *builder) directory() {
	b.add(obj{"resourceType": "Organization", "id": "demo-clinic", "active": true, "name": "Riverside Family Health (demo)",
		"type":    []any{concept("http://terminology.hl7.org/CodeSystem/organization-type", "prov", "Healthcare Provider")},
		"telecom": []any{obj{"system": "phone", "value": "555-0100", "use": "work"}}})
	b.add(obj{"resourceType": "Location", "id": "demo-loc-clinic", "status": "active", "name": "Riverside Family Health, Main Street clinic",
		"address":              obj{"line": []any{"100 Main Street"}, "city": "Springfield", "state": "ZZ", "postalCode": "00000"},
		"managingOrganization": ref("Organization", "demo-clinic")})
	b.add(obj{"resourceType": "Location", "id": "demo-loc-video", "status": "active", "name": "Video visit", "mode": "kind",
		"type":                 []any{concept("http://terminology.hl7.org/CodeSystem/v3-RoleCode", "VI", "virtual")},
		"managingOrganization": ref("Organization", "demo-clinic")})
	for _, p := range []struct{ id, given, family, qual string }{
		{"demo-dr-patel", "Anika", "Patel", "MD, family medicine"},
		{"demo-rn-kim", "Joon", "Kim", "RN, care coordinator"},
		{"demo-dr-nguyen", "Thao", "Nguyen", "MD, endocrinology"},
		{"demo-dr-okafor", "Chidi", "Okafor", "MD, pediatrics"},
	} {
		b.add(obj{"resourceType": "Practitioner", "id": p.id, "active": true,
			"name":          []any{obj{"family": p.family, "given": []any{p.given}, "suffix": []any{p.qual}}},
			"qualification": []any{obj{"code": obj{"text": p.qual}}}})
	}
	b.add(obj{"resourceType": "Medication", "id": "demo-med-metformin", "status": "active",
		"code": concept(rxnorm, "860975", "metformin hydrochloride 500 MG Extended Release Oral Tablet"),
		"form": concept(snomed, "385055001", "Tablet")})
}

func (b *builder) patient(id, given, family, gender string, ageYears int, lang string, extra obj) {
	p := obj{"resourceType": "Patient", "id": id, "active": true,
		"identifier": []any{obj{"system": mrnSystem, "value": "MRN-" + id}},
		"name":       []any{obj{"use": "official", "family": family, "given": []any{given}}},
		"gender":     gender, "birthDate": date(b.today.AddDate(-ageYears, -3, -11)),
		"telecom":              []any{obj{"system": "email", "value": id + "@example.com"}, obj{"system": "phone", "value": "555-01" + fmt.Sprint(10+len(id)), "use": "mobile"}},
		"address":              []any{obj{"line": []any{fmt.Sprintf("%d Elm Street", 10+len(given))}, "city": "Springfield", "state": "ZZ", "postalCode": "00000"}},
		"communication":        []any{obj{"language": concept("urn:ietf:bcp:47", lang, map[string]string{"en": "English", "es": "Spanish"}[lang]), "preferred": true}},
		"generalPractitioner":  []any{ref("Practitioner", "demo-dr-patel")},
		"managingOrganization": ref("Organization", "demo-clinic"),
	}
	for k, v := range extra {
		p[k] = v
	}
	b.add(p)
}

func (b *builder) condition(id, patient, code, display string, onsetDaysAgo int, security []any) {
	c := obj{"resourceType": "Condition", "id": id,
		"clinicalStatus":     concept(condClin, "active", "Active"),
		"verificationStatus": concept(condVer, "confirmed", "Confirmed"),
		"category":           []any{concept("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item", "Problem List Item")},
		"code":               concept(snomed, code, display), "subject": ref("Patient", patient),
		"onsetDateTime": date(b.day(-onsetDaysAgo)), "recordedDate": date(b.day(-onsetDaysAgo + 2)),
		"asserter": ref("Practitioner", "demo-dr-patel")}
	if security != nil {
		c["meta"] = obj{"security": security}
	}
	b.add(c)
}

// lab adds one quantity result with its reference range and flag.
func (b *builder) lab(id, patient, code, display, unit string, value, low, high float64, when string, category string, security []any) {
	o := obj{"resourceType": "Observation", "id": id, "status": "final",
		"category": []any{concept(obsCat, category, map[string]string{"laboratory": "Laboratory", "vital-signs": "Vital Signs", "survey": "Survey"}[category])},
		"code":     concept(loinc, code, display), "subject": ref("Patient", patient),
		"effectiveDateTime": when, "issued": when,
		"valueQuantity": obj{"value": value, "unit": unit, "system": ucum, "code": unit},
		"performer":     []any{ref("Organization", "demo-clinic")},
	}
	rr := obj{}
	if !math.IsNaN(low) {
		rr["low"] = obj{"value": low, "unit": unit, "system": ucum, "code": unit}
	}
	if !math.IsNaN(high) {
		rr["high"] = obj{"value": high, "unit": unit, "system": ucum, "code": unit}
	}
	if len(rr) > 0 {
		o["referenceRange"] = []any{rr}
		flag, text := "N", "Normal"
		if !math.IsNaN(high) && value > high {
			flag, text = "H", "High"
		} else if !math.IsNaN(low) && value < low {
			flag, text = "L", "Low"
		}
		o["interpretation"] = []any{concept("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", flag, text)}
	}
	if security != nil {
		o["meta"] = obj{"security": security}
	}
	b.add(o)
}

// round1 keeps one decimal, so generated values read like lab values.
func round1(v float64) float64 { return math.Round(v*10) / 10 }

// trend goes from start to end over n steps with a small fixed wiggle.
func trend(start, end float64, i, n int) float64 {
	wiggle := []float64{0, 0.6, -0.4, 0.3, -0.2}[i%5]
	return start + (end-start)*float64(i)/float64(n-1) + wiggle*(end-start)/10
}

func (b *builder) maria() {
	const p = Maria
	b.patient(p, "Maria", "Ortega-Demo", "female", 58, "es", nil)
	b.condition("demo-maria-t2d", p, "44054006", "Diabetes mellitus type 2", 6*365, nil)
	b.condition("demo-maria-htn", p, "38341003", "Hypertensive disorder", 8*365, nil)
	b.condition("demo-maria-depression", p, "35489007", "Depressive disorder", 2*365, labelPsychiatry)

	// Three years of quarterly results, oldest first.
	const n = 12
	for i := 0; i < n; i++ {
		when := b.day(-(n-1-i)*91 - 3).Add(clock(8, 30))
		ts := dateTime(when)
		q := fmt.Sprintf("%02d", i+1)
		b.lab("demo-maria-a1c-"+q, p, "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", round1(trend(8.4, 6.8, i, n)), math.NaN(), 5.6, ts, "laboratory", nil)
		b.lab("demo-maria-ldl-"+q, p, "13457-7", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation", "mg/dL", math.Round(trend(142, 94, i, n)), math.NaN(), 100, ts, "laboratory", nil)
		b.lab("demo-maria-egfr-"+q, p, "33914-3", "Glomerular filtration rate/1.73 sq M.predicted", "mL/min/{1.73_m2}", math.Round(trend(79, 70, i, n)), 60, math.NaN(), ts, "laboratory", nil)
		b.lab("demo-maria-glucose-"+q, p, "2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", math.Round(trend(168, 112, i, n)), 70, 99, ts, "laboratory", nil)
		b.add(obj{"resourceType": "DiagnosticReport", "id": "demo-maria-panel-" + q, "status": "final",
			"category": []any{concept("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB", "Laboratory")},
			"code":     concept(loinc, "24323-8", "Comprehensive metabolic 2000 panel - Serum or Plasma"),
			"subject":  ref("Patient", p), "effectiveDateTime": ts, "issued": ts,
			"result": []any{ref("Observation", "demo-maria-a1c-"+q), ref("Observation", "demo-maria-ldl-"+q),
				ref("Observation", "demo-maria-egfr-"+q), ref("Observation", "demo-maria-glucose-"+q)}})
		sys, dia := math.Round(trend(148, 128, i, n)), math.Round(trend(93, 79, i, n))
		b.add(obj{"resourceType": "Observation", "id": "demo-maria-bp-" + q, "status": "final",
			"category": []any{concept(obsCat, "vital-signs", "Vital Signs")},
			"code":     concept(loinc, "85354-9", "Blood pressure panel with all children optional"),
			"subject":  ref("Patient", p), "effectiveDateTime": ts,
			"component": []any{
				obj{"code": concept(loinc, "8480-6", "Systolic blood pressure"), "valueQuantity": obj{"value": sys, "unit": "mm[Hg]", "system": ucum, "code": "mm[Hg]"},
					"referenceRange": []any{obj{"high": obj{"value": 130, "unit": "mm[Hg]", "system": ucum, "code": "mm[Hg]"}}}},
				obj{"code": concept(loinc, "8462-4", "Diastolic blood pressure"), "valueQuantity": obj{"value": dia, "unit": "mm[Hg]", "system": ucum, "code": "mm[Hg]"},
					"referenceRange": []any{obj{"high": obj{"value": 80, "unit": "mm[Hg]", "system": ucum, "code": "mm[Hg]"}}}},
			}})
	}
	b.lab("demo-maria-phq9", p, "44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score", "{score}", 12, math.NaN(), 4, dateTime(b.day(-200)), "survey", labelPsychiatry)

	// Medications with refills.
	for _, m := range []struct {
		id, code, display, dose string
		repeats                 int
		security                []any
		medRef                  bool
	}{
		{"demo-maria-rx-metformin", "860975", "metformin 500 mg extended-release tablet", "Take 1 tablet by mouth twice a day with meals", 3, nil, true},
		{"demo-maria-rx-lisinopril", "314076", "lisinopril 10 mg tablet", "Take 1 tablet by mouth once a day", 3, nil, false},
		{"demo-maria-rx-atorvastatin", "617312", "atorvastatin 20 mg tablet", "Take 1 tablet by mouth at bedtime", 2, nil, false},
		{"demo-maria-rx-sertraline", "312940", "sertraline 50 mg tablet", "Take 1 tablet by mouth once a day", 1, labelPsychiatry, false},
	} {
		r := obj{"resourceType": "MedicationRequest", "id": m.id, "status": "active", "intent": "order",
			"category": []any{concept("http://terminology.hl7.org/CodeSystem/medicationrequest-category", "community", "Community")},
			"subject":  ref("Patient", p), "authoredOn": date(b.day(-120)), "requester": ref("Practitioner", "demo-dr-patel"),
			"dosageInstruction": []any{obj{"text": m.dose}},
			"dispenseRequest": obj{"numberOfRepeatsAllowed": m.repeats, "quantity": obj{"value": 90, "unit": "tablet"},
				"expectedSupplyDuration": obj{"value": 90, "unit": "days", "system": ucum, "code": "d"},
				"validityPeriod":         obj{"start": date(b.day(-120)), "end": date(b.day(245))}},
		}
		if m.medRef {
			r["medicationReference"] = ref("Medication", "demo-med-metformin")
		} else {
			r["medicationCodeableConcept"] = concept(rxnorm, m.code, m.display)
		}
		if m.security != nil {
			r["meta"] = obj{"security": m.security}
		}
		b.add(r)
	}
	b.add(obj{"resourceType": "AllergyIntolerance", "id": "demo-maria-allergy-penicillin",
		"clinicalStatus":     concept("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active", "Active"),
		"verificationStatus": concept("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "confirmed", "Confirmed"),
		"type":               "allergy", "category": []any{"medication"}, "criticality": "low",
		"code":    concept(rxnorm, "7980", "penicillin G"),
		"patient": ref("Patient", p), "recordedDate": date(b.day(-3000)),
		"reaction": []any{obj{"manifestation": []any{concept(snomed, "247472004", "Hives")}, "severity": "mild"}}})
	b.immunization("demo-maria-flu-1", p, "150", "influenza, injectable, quadrivalent, preservative free", -800)
	b.immunization("demo-maria-flu-2", p, "150", "influenza, injectable, quadrivalent, preservative free", -435)
	b.immunization("demo-maria-flu-3", p, "150", "influenza, injectable, quadrivalent, preservative free", -70)
	b.immunization("demo-maria-covid", p, "208", "SARS-COV-2 (COVID-19) vaccine, mRNA", -400)
	b.immunization("demo-maria-tdap", p, "115", "Tdap", -1900)

	// Past visits, each with a visit summary.
	for i := 0; i < 6; i++ {
		days := -(5-i)*182 - 14
		b.visit(fmt.Sprintf("demo-maria-visit-%d", i+1), p, "demo-dr-patel", days,
			"Follow-up for diabetes and blood pressure. A1c and blood pressure reviewed; medicines continued. Keep walking 30 minutes a day. Next labs in 3 months.", nil)
	}
	b.appointment("demo-maria-appt-clinic", p, "demo-dr-patel", "demo-loc-clinic", "in-person", 10, 9, 30, "Diabetes follow-up")
	// The demo clinician (Dr. Patel) is on it, so both sides can be tried.
	b.appointmentAt("demo-maria-appt-video", p, "demo-dr-patel", "demo-loc-video", "video", b.soon, "Diabetes video check-in")

	b.add(obj{"resourceType": "CareTeam", "id": "demo-maria-careteam", "status": "active", "name": "Maria's care team",
		"subject": ref("Patient", p),
		"participant": []any{
			obj{"role": []any{concept(snomed, "446050000", "Primary care physician")}, "member": ref("Practitioner", "demo-dr-patel")},
			obj{"role": []any{concept(snomed, "224535009", "Registered nurse")}, "member": ref("Practitioner", "demo-rn-kim")},
			obj{"role": []any{concept(snomed, "309337009", "Endocrinologist")}, "member": ref("Practitioner", "demo-dr-nguyen")},
		},
		"managingOrganization": []any{ref("Organization", "demo-clinic")}})
	b.add(obj{"resourceType": "Goal", "id": "demo-maria-goal-a1c", "lifecycleStatus": "active",
		"achievementStatus": concept("http://terminology.hl7.org/CodeSystem/goal-achievement", "improving", "Improving"),
		"description":       obj{"text": "Keep hemoglobin A1c below 7%"}, "subject": ref("Patient", p), "startDate": date(b.day(-365)),
		"target": []any{obj{"measure": concept(loinc, "4548-4", "Hemoglobin A1c"), "detailQuantity": obj{"value": 7, "comparator": "<", "unit": "%", "system": ucum, "code": "%"},
			"dueDate": date(b.day(180))}}})
	b.add(obj{"resourceType": "Goal", "id": "demo-maria-goal-bp", "lifecycleStatus": "active",
		"achievementStatus": concept("http://terminology.hl7.org/CodeSystem/goal-achievement", "improving", "Improving"),
		"description":       obj{"text": "Keep blood pressure below 130/80"}, "subject": ref("Patient", p), "startDate": date(b.day(-365)),
		"target": []any{obj{"measure": concept(loinc, "85354-9", "Blood pressure"), "dueDate": date(b.day(180))}}})
	b.add(obj{"resourceType": "CarePlan", "id": "demo-maria-careplan", "status": "active", "intent": "plan",
		"category": []any{concept("http://hl7.org/fhir/us/core/CodeSystem/careplan-category", "assess-plan", "Assessment and Plan of Treatment")},
		"title":    "Diabetes and blood pressure plan", "subject": ref("Patient", p),
		"period":    obj{"start": date(b.day(-365))},
		"addresses": []any{ref("Condition", "demo-maria-t2d"), ref("Condition", "demo-maria-htn")},
		"goal":      []any{ref("Goal", "demo-maria-goal-a1c"), ref("Goal", "demo-maria-goal-bp")},
		"careTeam":  []any{ref("CareTeam", "demo-maria-careteam")},
		"activity": []any{
			obj{"detail": obj{"status": "in-progress", "description": "Check blood sugar every morning before breakfast"}},
			obj{"detail": obj{"status": "in-progress", "description": "Walk 30 minutes a day, five days a week"}},
			obj{"detail": obj{"status": "scheduled", "description": "Lab work every 3 months: A1c, lipids, kidney function"}},
		}})
}

func (b *builder) immunization(id, patient, code, display string, daysAgo int) {
	b.add(obj{"resourceType": "Immunization", "id": id, "status": "completed",
		"vaccineCode": concept(cvx, code, display), "patient": ref("Patient", patient),
		"occurrenceDateTime": date(b.day(daysAgo)), "primarySource": true,
		"location": ref("Location", "demo-loc-clinic")})
}

// visit adds a past office visit and its summary document.
func (b *builder) visit(id, patient, practitioner string, daysAgo int, summary string, security []any) {
	start := b.day(daysAgo).Add(clock(10, 0))
	enc := obj{"resourceType": "Encounter", "id": id, "status": "finished",
		"class":           coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB", "ambulatory"),
		"type":            []any{concept(snomed, "185349003", "Encounter for check up")},
		"subject":         ref("Patient", patient),
		"participant":     []any{obj{"individual": ref("Practitioner", practitioner)}},
		"period":          obj{"start": dateTime(start), "end": dateTime(start.Add(30 * time.Minute))},
		"location":        []any{obj{"location": ref("Location", "demo-loc-clinic")}},
		"serviceProvider": ref("Organization", "demo-clinic")}
	doc := obj{"resourceType": "DocumentReference", "id": id + "-summary", "status": "current",
		"type":     concept(loinc, "34133-9", "Summary of episode note"),
		"category": []any{concept("http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category", "clinical-note", "Clinical Note")},
		"subject":  ref("Patient", patient), "date": dateTime(start.Add(45 * time.Minute)),
		"author":      []any{ref("Practitioner", practitioner)},
		"description": "Visit summary",
		"content": []any{obj{"attachment": obj{"contentType": "text/plain; charset=utf-8", "language": "en",
			"data": base64.StdEncoding.EncodeToString([]byte(summary)), "title": "Visit summary"}}},
		"context": obj{"encounter": []any{ref("Encounter", id)}, "period": obj{"start": dateTime(start), "end": dateTime(start.Add(30 * time.Minute))}}}
	if security != nil {
		enc["meta"] = obj{"security": security}
		doc["meta"] = obj{"security": security}
	}
	b.add(enc)
	b.add(doc)
}

func (b *builder) appointment(id, patient, practitioner, location, mode string, inDays, hour, minute int, description string) {
	b.appointmentAt(id, patient, practitioner, location, mode, b.day(inDays).Add(clock(hour, minute)), description)
}

func (b *builder) appointmentAt(id, patient, practitioner, location, mode string, start time.Time, description string) {
	b.add(obj{"resourceType": "Appointment", "id": id, "status": "booked",
		"extension":   []any{obj{"url": visitMode, "valueCode": mode}},
		"serviceType": []any{concept(snomed, "185389009", "Follow-up visit")},
		"description": description,
		"start":       dateTime(start), "end": dateTime(start.Add(30 * time.Minute)), "minutesDuration": 30,
		"participant": []any{
			obj{"actor": ref("Patient", patient), "status": "accepted", "required": "required"},
			obj{"actor": ref("Practitioner", practitioner), "status": "accepted", "required": "required"},
			obj{"actor": ref("Location", location), "status": "accepted", "required": "required"},
		}})
}

func clock(hour, minute int) time.Duration {
	return time.Duration(hour)*time.Hour + time.Duration(minute)*time.Minute
}

func (b *builder) walter() {
	const p = Walter
	b.patient(p, "Walter", "Brooks-Demo", "male", 85, "en", nil)
	b.add(obj{"resourceType": "RelatedPerson", "id": "demo-linda-for-walter", "active": true, "patient": ref("Patient", p),
		"relationship": []any{concept(roleCode, "DAU", "natural daughter"), concept("http://terminology.hl7.org/CodeSystem/v2-0131", "C", "Emergency Contact")},
		"name":         []any{obj{"family": "Brooks-Demo", "given": []any{"Linda"}}}, "gender": "female",
		"telecom": []any{obj{"system": "email", "value": "linda.brooks-demo@example.com"}}})
	b.condition("demo-walter-afib", p, "49436004", "Atrial fibrillation", 5*365, nil)
	b.condition("demo-walter-oa", p, "239873007", "Osteoarthritis of knee", 10*365, nil)
	b.add(obj{"resourceType": "MedicationRequest", "id": "demo-walter-rx-apixaban", "status": "active", "intent": "order",
		"medicationCodeableConcept": concept(rxnorm, "1364435", "apixaban 5 mg tablet"),
		"subject":                   ref("Patient", p), "authoredOn": date(b.day(-90)), "requester": ref("Practitioner", "demo-dr-patel"),
		"dosageInstruction": []any{obj{"text": "Take 1 tablet by mouth twice a day"}},
		"dispenseRequest":   obj{"numberOfRepeatsAllowed": 5, "quantity": obj{"value": 60, "unit": "tablet"}}})
	b.lab("demo-walter-auditc", p, "75626-2", "Total score [AUDIT-C]", "{score}", 5, math.NaN(), 3, dateTime(b.day(-60)), "survey", labelSubstanceUse)
	b.immunization("demo-walter-pneumo", p, "133", "Pneumococcal conjugate PCV 13", -700)
	b.immunization("demo-walter-flu", p, "197", "influenza, high-dose, quadrivalent", -60)
	b.visit("demo-walter-visit-1", p, "demo-dr-patel", -60, "Annual wellness visit. Heart rhythm controlled; continue apixaban. Knee exercises reviewed.", nil)
	b.appointment("demo-walter-appt-clinic", p, "demo-dr-patel", "demo-loc-clinic", "in-person", 20, 11, 0, "Annual follow-up")
}

func (b *builder) children() {
	for _, c := range []struct{ id, given, gender string }{{Sam, "Sam", "male"}, {Lily, "Lily", "female"}} {
		b.add(obj{"resourceType": "RelatedPerson", "id": "demo-dana-for-" + c.given, "active": true, "patient": ref("Patient", c.id),
			"relationship": []any{concept(roleCode, "PRN", "parent")},
			"name":         []any{obj{"family": "Lee-Demo", "given": []any{"Dana"}}}, "gender": "female",
			"telecom": []any{obj{"system": "email", "value": "dana.lee-demo@example.com"}}})
	}
	b.patient(Sam, "Sam", "Lee-Demo", "male", 15, "en", nil)
	b.immunization("demo-sam-hpv", Sam, "165", "HPV9", -300)
	b.immunization("demo-sam-tdap", Sam, "115", "Tdap", -1100)
	b.visit("demo-sam-visit-well", Sam, "demo-dr-okafor", -300, "Well visit. Growth and development normal. Vaccines given.", nil)
	b.visit("demo-sam-visit-confidential", Sam, "demo-dr-okafor", -40, "Confidential adolescent visit: reproductive health counseling.", labelSexualHealth)
	b.add(obj{"resourceType": "Procedure", "id": "demo-sam-counseling", "status": "completed",
		"meta":    obj{"security": labelSexualHealth},
		"code":    concept(snomed, "389095005", "Contraception care"),
		"subject": ref("Patient", Sam), "encounter": ref("Encounter", "demo-sam-visit-confidential"),
		"performedDateTime": date(b.day(-40)), "performer": []any{obj{"actor": ref("Practitioner", "demo-dr-okafor")}}})

	b.patient(Lily, "Lily", "Lee-Demo", "female", 8, "en", nil)
	b.condition("demo-lily-asthma", Lily, "195967001", "Asthma", 3*365, nil)
	b.add(obj{"resourceType": "MedicationRequest", "id": "demo-lily-rx-albuterol", "status": "active", "intent": "order",
		"medicationCodeableConcept": concept(rxnorm, "745679", "albuterol 90 mcg/actuation inhaler"),
		"subject":                   ref("Patient", Lily), "authoredOn": date(b.day(-200)), "requester": ref("Practitioner", "demo-dr-okafor"),
		"dosageInstruction": []any{obj{"text": "2 puffs every 4 hours as needed for wheezing"}},
		"dispenseRequest":   obj{"numberOfRepeatsAllowed": 2}})
	b.immunization("demo-lily-mmr", Lily, "03", "MMR", -1500)
	b.immunization("demo-lily-flu", Lily, "150", "influenza, injectable, quadrivalent, preservative free", -50)
	for i, age := range []int{6, 7, 8} {
		when := dateTime(b.day(-(8-age)*365 - 20).Add(clock(9, 0)))
		b.lab(fmt.Sprintf("demo-lily-height-%d", i+1), Lily, "8302-2", "Body height", "cm", float64(115+6*i), math.NaN(), math.NaN(), when, "vital-signs", nil)
		b.lab(fmt.Sprintf("demo-lily-weight-%d", i+1), Lily, "29463-7", "Body weight", "kg", round1(20.5+2.8*float64(i)), math.NaN(), math.NaN(), when, "vital-signs", nil)
	}
	b.appointment("demo-lily-appt-video", Lily, "demo-dr-okafor", "demo-loc-video", "video", 6, 16, 0, "Asthma check-in")
}
