package benchdb

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"carefront/internal/audit"
	"carefront/internal/clinical/importer"
	"carefront/internal/clinical/store"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
)

// Import loads the fixtures in dir into db as `carefront import` does
// (audited), and returns how many resources and how long it took.
func Import(ctx context.Context, db *sqldb.DB, dir string) (int, time.Duration, error) {
	sig, _ := audit.NewSigner(make([]byte, 32))
	aw := audit.NewWriter(db, audit.Options{Signer: sig, Observer: "bench", CheckpointEvery: 1000})
	defer aw.Close(ctx)
	im := &importer.Importer{Store: store.New(db), Audit: aw}
	start := time.Now()
	sum, err := im.Run(ctx, []string{dir})
	took := time.Since(start)
	if err != nil {
		return 0, 0, err
	}
	if len(sum.Failed) > 0 {
		return 0, 0, fmt.Errorf("import failed: %v", sum.Failed[0])
	}
	n := 0
	for _, c := range sum.ByType {
		n += c.Total()
	}
	return n, took, nil
}

// MostA1c returns the patient with the most A1c results (LOINC 4548-4)
// in st, how many, and the ids of all their Observations.
func MostA1c(ctx context.Context, st *store.Store) (patient string, most int, observations []string, err error) {
	q, _ := fhir.ParseQuery("Observation", url.Values{"code": {"http://loinc.org|4548-4"}, "_count": {"1000"}}, false)
	page, err := st.Search(ctx, q)
	if err != nil {
		return "", 0, nil, err
	}
	perPatient := map[string]int{}
	for _, m := range page.Matches {
		tree, _ := fhir.Decode(m.Raw)
		for _, p := range fhir.Compartments(m.Type, m.ID, tree) {
			perPatient[p]++
		}
	}
	for p, n := range perPatient {
		if n > most || (n == most && p < patient) {
			patient, most = p, n
		}
	}
	if patient == "" {
		return "", 0, nil, fmt.Errorf("no patient with A1c results in the fixtures")
	}
	q, _ = fhir.ParseQuery("Observation", url.Values{"_count": {"1000"}}, false)
	q.Compartment = patient
	obs, err := st.Search(ctx, q)
	if err != nil {
		return "", 0, nil, err
	}
	for _, m := range obs.Matches {
		observations = append(observations, m.ID)
	}
	return patient, most, observations, nil
}
