package consent

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"strings"
	"time"
	"unicode/utf8"

	"carefront/internal/access"
	"carefront/internal/apperr"
	"carefront/internal/audit"
	"carefront/internal/clinical/store"
	"carefront/internal/fhir"
	"carefront/internal/sqldb"
)

// Research participation: the clinic adds a study; a patient opts in (a
// research Consent in their record, scope research, permit) and may
// withdraw at any time (the Consent becomes inactive). Opting in shares
// nothing by itself; it is kept apart from privacy and treatment consent.

// Acceptance is a version of the terms an account accepted.
type Acceptance struct {
	Version string
	At      time.Time
}

func microTime(us int64) time.Time { return time.UnixMicro(us).UTC() }

// Study is a research study patients may join.
type Study struct {
	ID, Title, Description string
	Created                time.Time
	// Joined, for a patient, is when they opted in; zero when they have
	// not, or withdrew.
	Joined time.Time
}

// Research keeps studies and participation.
type Research struct {
	DB    *sqldb.DB
	Audit *audit.Writer
	Store *store.Store
}

// Add adds a study. A missing or too long title or description is
// Invalid.
func (rs *Research) Add(ctx context.Context, title, description, by string) (*Study, error) {
	title, description = strings.TrimSpace(title), strings.TrimSpace(description)
	switch {
	case title == "" || utf8.RuneCountInString(title) > 200 || strings.ContainsAny(title, "\r\n"):
		return nil, apperr.New(apperr.Invalid, "give a title of up to 200 characters on one line")
	case description == "" || len(description) > 20000 || !utf8.ValidString(description):
		return nil, apperr.New(apperr.Invalid, "give a description (UTF-8 text, at most 20,000 bytes)")
	}
	var b [8]byte
	rand.Read(b[:])
	s := &Study{ID: "study-" + hex.EncodeToString(b[:]), Title: title, Description: description, Created: rs.DB.Now().UTC()}
	err := rs.DB.Write(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO research_study (id, title, description, created) VALUES (?, ?, ?, ?)",
			s.ID, s.Title, s.Description, s.Created.UnixMicro()); err != nil {
			return err
		}
		return rs.Audit.Stage(ctx, tx, audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypePolicyChange},
			Action: audit.Create, Outcome: audit.Success, Reason: "research-study-added", Client: by})
	})
	if err != nil {
		return nil, fmt.Errorf("consent: add study: %w", err)
	}
	rs.Audit.Chain(ctx)
	return s, nil
}

// Studies lists the open studies, each with when the patient joined
// (zero when they have not, or withdrew).
func (rs *Research) Studies(ctx context.Context, patient string) ([]Study, error) {
	var out []Study
	err := rs.DB.Read(ctx, func(tx *sqldb.Tx) error {
		rows, err := tx.Query(ctx, "SELECT id, title, description, created FROM research_study WHERE closed_at IS NULL ORDER BY created, id")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s Study
			var created int64
			if err := rows.Scan(&s.ID, &s.Title, &s.Description, &created); err != nil {
				return err
			}
			s.Created = microTime(created)
			out = append(out, s)
		}
		return rows.Err()
	})
	if err != nil || patient == "" {
		return out, err
	}
	for i := range out {
		r, err := rs.Store.Read(ctx, "Consent", participationID(out[i].ID, patient))
		if err != nil {
			continue // never joined
		}
		t, err := r.Tree()
		ref, _ := t["patient"].(map[string]any)
		if err == nil && t["status"] == "active" && str(ref["reference"]) == "Patient/"+patient {
			out[i].Joined = parseTime(str(t["dateTime"]))
		}
	}
	return out, nil
}

// participationID is the id of a patient's research Consent for a study.
func participationID(study, patient string) string {
	h := sha256.Sum256([]byte(study + "\x00" + patient))
	return "research-" + hex.EncodeToString(h[:20])
}

// Join records the patient's opt-in to a study, or (join false) their
// withdrawal, as a new version of their research Consent for it.
func (rs *Research) Join(ctx context.Context, studyID, patient string, join bool, by, addr string) error {
	studies, err := rs.Studies(ctx, "")
	if err != nil {
		return err
	}
	var study *Study
	for i := range studies {
		if studies[i].ID == studyID {
			study = &studies[i]
		}
	}
	if study == nil {
		return apperr.New(apperr.NotFound, "no open study has that id")
	}
	now := rs.DB.Now().UTC()
	status := "active"
	if !join {
		status = "inactive"
	}
	id := participationID(studyID, patient)
	c := map[string]any{"resourceType": "Consent", "id": id, "status": status,
		"scope":    map[string]any{"coding": []any{map[string]any{"system": sysConsentScope, "code": "research"}}},
		"category": []any{map[string]any{"coding": []any{map[string]any{"system": sysConsentCategory, "code": "59284-0"}}}},
		"patient":  map[string]any{"reference": "Patient/" + patient},
		"dateTime": now.Format(time.RFC3339),
		"provision": map[string]any{"type": "permit",
			"purpose": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HRESCH"}},
			"actor": []any{map[string]any{
				"role":      map[string]any{"coding": []any{map[string]any{"system": sysRoleCode, "code": "PRCP"}}},
				"reference": map[string]any{"identifier": map[string]any{"system": "urn:carefront:research-study", "value": studyID}, "display": study.Title}}}},
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return err
	}
	reason := "research-joined"
	if !join {
		reason = "research-withdrawn"
	}
	b := &fhir.Bundle{ResourceType: "Bundle", Type: "transaction", Entry: []*fhir.Entry{{Resource: raw, Request: &fhir.EntryRequest{Method: "PUT", URL: "Consent/" + id}}}}
	_, err = rs.Store.Process(ctx, b, store.BundleOptions{Import: true, Audit: func(ctx context.Context, tx *sqldb.Tx, _ *store.Result) error {
		if err := access.Bump(ctx, tx, patient); err != nil {
			return err
		}
		rec := audit.Record{Type: audit.TypeApplicationActivity, Subtype: []audit.Coding{audit.SubtypePolicyChange},
			Action: audit.Update, Outcome: audit.Success, Reason: reason, Address: addr, Patient: "Patient/" + patient,
			Entities: []audit.Entity{{What: "Consent/" + id}}}
		setActor(&rec, by)
		return rs.Audit.Stage(ctx, tx, rec)
	}})
	if err != nil {
		return fmt.Errorf("consent: research: %w", err)
	}
	rs.Audit.Chain(ctx)
	return nil
}
