// Package demo builds carefront's demo population: synthetic people the
// project invents itself (no real person's data), written to the embedded
// store on the first start with --demo. It is deterministic: the same day
// gives the same resources, with dates placed around that day so results
// have three years of history and appointments lie ahead.
//
// The people:
//   - Maria Ortega-Demo (58): type 2 diabetes and hypertension, three years
//     of A1c, LDL, eGFR, glucose and blood pressure (the newest three days
//     old), medications with refills, an allergy, immunizations, visit
//     summaries, a care team, a care plan with goals, a clinic visit in ten
//     days and a video visit later today, and a depression diagnosis
//     labelled as sensitive.
//   - Walter Brooks-Demo (85), whose daughter Linda Brooks-Demo is his
//     caregiver (RelatedPerson); an alcohol screening labelled sensitive.
//   - Sam Lee-Demo (15) and Lily Lee-Demo (8), whose parent is Dana
//     Lee-Demo; Sam has a reproductive-health visit labelled sensitive.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"carefront/internal/audit"
	"carefront/internal/clinical/store"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
)

// Patient ids of the demo population.
const (
	Maria  = "demo-maria"
	Walter = "demo-walter"
	Sam    = "demo-sam"
	Lily   = "demo-lily"
)

// Code systems.
const (
	loinc     = "http://loinc.org"
	snomed    = "http://snomed.info/sct"
	rxnorm    = "http://www.nlm.nih.gov/research/umls/rxnorm"
	cvx       = "http://hl7.org/fhir/sid/cvx"
	obsCat    = "http://terminology.hl7.org/CodeSystem/observation-category"
	condClin  = "http://terminology.hl7.org/CodeSystem/condition-clinical"
	condVer   = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
	actCode   = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	confCode  = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
	roleCode  = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
	ucum      = "http://unitsofmeasure.org"
	actClass  = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	mrnSystem = "https://carefront.example/demo/mrn"
	visitMode = "https://carefront.example/fhir/StructureDefinition/visit-mode"
)

// Sensitivity labels the demo uses.
var (
	labelPsychiatry   = []any{coding(actCode, "PSY", "psychiatry information sensitivity"), coding(confCode, "R", "restricted")}
	labelSubstanceUse = []any{coding(actCode, "ETH", "substance abuse information sensitivity"), coding(confCode, "R", "restricted")}
	labelSexualHealth = []any{coding(actCode, "SEX", "sexuality and reproductive health information sensitivity"), coding(confCode, "R", "restricted")}
)

type obj = map[string]any

func coding(system, code, display string) obj {
	return obj{"system": system, "code": code, "display": display}
}

func concept(system, code, display string) obj {
	return obj{"coding": []any{coding(system, code, display)}, "text": display}
}

func ref(typ, id string) obj { return obj{"reference": typ + "/" + id} }

// builder collects the Bundle's entries.
type builder struct {
	today time.Time
	// soon is 5 to 10 minutes after the build, for a video visit about
	// to happen: its waiting room (open from 15 minutes before) is open
	// at once, and it is still ahead on the home page.
	soon    time.Time
	entries []*fhir.Entry
	err     error
}

func (b *builder) add(r obj) {
	raw, err := json.Marshal(r)
	if err != nil && b.err == nil {
		b.err = err
	}
	typ, id := r["resourceType"].(string), r["id"].(string)
	b.entries = append(b.entries, &fhir.Entry{FullURL: typ + "/" + id, Resource: raw,
		Request: &fhir.EntryRequest{Method: "PUT", URL: typ + "/" + id}})
}

func (b *builder) day(offsetDays int) time.Time { return b.today.AddDate(0, 0, offsetDays) }

func date(t time.Time) string     { return t.Format("2006-01-02") }
func dateTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Bundle returns the demo population as a transaction Bundle of PUTs,
// with dates placed around now's day, and a video visit starting within
// ten minutes of now (its waiting room already open). Two builds in the
// same five minutes are the same.
func Bundle(now time.Time) (*fhir.Bundle, error) {
	now = now.UTC()
	b := &builder{today: time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC),
		soon: now.Truncate(5 * time.Minute).Add(10 * time.Minute)}
	b.directory()
	b.maria()
	b.walter()
	b.children()
	if b.err != nil {
		return nil, b.err
	}
	return &fhir.Bundle{ResourceType: "Bundle", Type: "transaction", Entry: b.entries}, nil
}

// Seed writes the demo population, placed around now, and audits what
// changed: on the first start all of it; on later starts the records whose
// dates moved (upcoming visits stay upcoming, the newest results stay
// recent), so a first look always has something current to show. It
// reports whether it wrote anything.
func Seed(ctx context.Context, st *store.Store, aw *audit.Writer, now time.Time) (bool, error) {
	bundle, err := Bundle(now)
	if err != nil {
		return false, err
	}
	changed := false
	// The records are staged in the Bundle's own transaction: the data
	// and its audit records commit together or not at all.
	stage := func(ctx context.Context, tx *sqldb.Tx, res *store.Result) error {
		byPatient := map[string][]audit.Entity{}
		for _, w := range res.Written {
			if w == nil || !w.Changed || w.Resource == nil {
				continue
			}
			for _, p := range w.Patients {
				byPatient[p] = append(byPatient[p], audit.Entity{What: w.Resource.Ref()})
			}
		}
		for _, p := range []string{Maria, Walter, Sam, Lily} {
			if len(byPatient[p]) == 0 {
				continue
			}
			changed = true
			if err := aw.Stage(ctx, tx, audit.Record{Type: audit.TypeImport, Subtype: []audit.Coding{audit.SubtypeCreate},
				Action: audit.Create, Outcome: audit.Success, Client: "carefront-demo", Patient: "Patient/" + p,
				Entities: byPatient[p]}); err != nil {
				return err
			}
		}
		return nil
	}
	if _, err := st.Process(ctx, bundle, store.BundleOptions{Import: true, Audit: stage}); err != nil {
		return false, fmt.Errorf("demo data: %w", err)
	}
	if changed {
		if err := aw.Chain(ctx); err != nil {
			return true, fmt.Errorf("demo data: stored, with its audit records staged; chaining them: %w", err)
		}
	}
	return changed, nil
}
