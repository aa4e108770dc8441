package views

import (
	"context"
	"net/url"
	"slices"
	"time"

	"carefront/internal/clinical"
)

// Summary is the health summary: conditions, allergies, immunizations,
// the care team, care plans and goals.
type Summary struct {
	Conditions    []Condition    `json:"conditions"`
	Resolved      []Condition    `json:"resolved"`
	Allergies     []Allergy      `json:"allergies"`
	Immunizations []Immunization `json:"immunizations"`
	CareTeam      []TeamMember   `json:"careTeam"`
	CarePlans     []CarePlan     `json:"carePlans"`
	Goals         []Goal         `json:"goals"`
	Unavailable   []Block        `json:"unavailable,omitempty"`
}

// Condition is one problem or diagnosis.
type Condition struct {
	// Ref is the item's reference, for asking to correct it (as on
	// Allergy and Immunization).
	Ref   string    `json:"ref"`
	Name  string    `json:"name"`
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
}

// Allergy is one allergy or intolerance.
type Allergy struct {
	Ref         string   `json:"ref"`
	Name        string   `json:"name"`
	Reactions   []string `json:"reactions,omitempty"`
	Severity    string   `json:"severity,omitempty"`
	Criticality string   `json:"criticality,omitempty"`
}

// Immunization is one vaccine given.
type Immunization struct {
	Ref  string    `json:"ref"`
	Name string    `json:"name"`
	Date time.Time `json:"date,omitzero"`
}

// TeamMember is one person of the care team.
type TeamMember struct {
	Name string `json:"name"`
	Role string `json:"role,omitempty"`
}

// CarePlan is one plan with its activities.
type CarePlan struct {
	Title      string   `json:"title"`
	Activities []string `json:"activities,omitempty"`
}

// Goal is one care-plan goal with the latest value of what it measures.
type Goal struct {
	Description string    `json:"description"`
	Status      string    `json:"status,omitempty"`
	Due         time.Time `json:"due,omitzero"`
	// Latest is the newest result of the goal's measure, when it has one.
	Latest *Result `json:"latest,omitempty"`
}

// Summary builds the health summary.
func (b *Builder) Summary(ctx context.Context, req clinical.Request, lang string) (*Summary, error) {
	return build(ctx, b, req, "summary", lang, func(s *session) (*Summary, error) { return s.summary(ctx) })
}

func (s *session) summary(ctx context.Context) (*Summary, error) {
	out := &Summary{Conditions: []Condition{}, Resolved: []Condition{}, Allergies: []Allergy{}, Immunizations: []Immunization{},
		CareTeam: []TeamMember{}, CarePlans: []CarePlan{}, Goals: []Goal{}}
	errs := make([]error, 6)
	var conds, allergies, imms, teams, plans []map[string]any
	s.b.parallel(
		func() { conds, _, errs[0] = s.search(ctx, "Condition", url.Values{}, 500) },
		func() { allergies, _, errs[1] = s.search(ctx, "AllergyIntolerance", url.Values{}, 200) },
		func() {
			imms, _, errs[2] = s.search(ctx, "Immunization", url.Values{"_sort": {"-date"}}, 300)
		},
		func() { teams, _, errs[3] = s.search(ctx, "CareTeam", url.Values{"status": {"active"}}, 20) },
		func() { plans, _, errs[4] = s.search(ctx, "CarePlan", url.Values{"status": {"active"}}, 50) },
		func() { out.Goals, errs[5] = s.goals(ctx) },
	)
	for i, b := range []Block{BlockConditions, BlockAllergies, BlockImmunization, BlockCareTeam, BlockCarePlans, BlockGoals} {
		un, fatal := blockErr(errs[i])
		if fatal != nil {
			return nil, fatal
		}
		if un {
			out.Unavailable = append(out.Unavailable, b)
		}
	}
	for _, c := range conds {
		if st := codeIn(c["verificationStatus"], "http://terminology.hl7.org/CodeSystem/condition-ver-status"); st == "entered-in-error" || st == "refuted" {
			continue
		}
		cd := Condition{Ref: "Condition/" + idOf(c), Name: conceptText(c["code"]), Since: firstDate(c, "onsetDateTime", "onsetPeriod", "recordedDate"),
			Until: firstDate(c, "abatementDateTime", "abatementPeriod")}
		switch codeIn(c["clinicalStatus"], "http://terminology.hl7.org/CodeSystem/condition-clinical") {
		case "resolved", "inactive", "remission":
			out.Resolved = append(out.Resolved, cd)
		default:
			if cd.Until.IsZero() {
				out.Conditions = append(out.Conditions, cd)
			} else {
				out.Resolved = append(out.Resolved, cd)
			}
		}
	}
	byNewest := func(a, b Condition) int { return b.Since.Compare(a.Since) }
	slices.SortStableFunc(out.Conditions, byNewest)
	slices.SortStableFunc(out.Resolved, func(a, b Condition) int { return b.Until.Compare(a.Until) })
	for _, a := range allergies {
		if codeIn(a["verificationStatus"], "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification") == "entered-in-error" {
			continue
		}
		al := Allergy{Ref: "AllergyIntolerance/" + idOf(a), Name: conceptText(a["code"]), Criticality: str(a, "criticality")}
		for _, r := range list(a["reaction"]) {
			for _, m := range list(obj(r)["manifestation"]) {
				if t := conceptText(m); t != "" && !slices.Contains(al.Reactions, t) {
					al.Reactions = append(al.Reactions, t)
				}
			}
			if sev := str(obj(r), "severity"); sev != "" {
				al.Severity = sev
			}
		}
		out.Allergies = append(out.Allergies, al)
	}
	for _, i := range imms {
		if str(i, "status") != "completed" {
			continue
		}
		out.Immunizations = append(out.Immunizations, Immunization{Ref: "Immunization/" + idOf(i), Name: conceptText(i["vaccineCode"]), Date: firstDate(i, "occurrenceDateTime")})
	}
	for _, t := range teams {
		for _, p := range list(t["participant"]) {
			pm := obj(p)
			n := s.name(ctx, pm["member"])
			if n == "" {
				continue
			}
			m := TeamMember{Name: n, Role: firstConcept(pm["role"])}
			if !slices.Contains(out.CareTeam, m) {
				out.CareTeam = append(out.CareTeam, m)
			}
		}
	}
	for _, p := range plans {
		cp := CarePlan{Title: str(p, "title")}
		if cp.Title == "" {
			cp.Title = str(p, "description")
		}
		if cp.Title == "" {
			cp.Title = firstConcept(p["category"])
		}
		for _, a := range list(p["activity"]) {
			d := obj(obj(a)["detail"])
			if st := str(d, "status"); st == "completed" || st == "cancelled" || st == "entered-in-error" || st == "stopped" {
				continue
			}
			t := str(d, "description")
			if t == "" {
				t = conceptText(d["code"])
			}
			if t != "" {
				cp.Activities = append(cp.Activities, t)
			}
		}
		out.CarePlans = append(out.CarePlans, cp)
	}
	return out, nil
}

// goals reads the open goals, each with the newest result of what it
// measures.
func (s *session) goals(ctx context.Context) ([]Goal, error) {
	gs, _, err := s.search(ctx, "Goal", url.Values{"lifecycle-status": {"proposed,planned,accepted,active,on-hold"}}, 50)
	if err != nil {
		return nil, err
	}
	out := make([]Goal, len(gs))
	fns := make([]func(), len(gs))
	var firstErr error
	errs := make([]error, len(gs))
	for i, g := range gs {
		out[i] = Goal{Description: conceptText(g["description"]), Status: conceptText(g["achievementStatus"])}
		var measure string
		for _, t := range list(g["target"]) {
			tm := obj(t)
			if d := firstDate(tm, "dueDate"); !d.IsZero() {
				out[i].Due = d
			}
			if m := resultKey(tm["measure"]); m != "" && measure == "" {
				measure = m
			}
		}
		fns[i] = func() {
			if measure == "" {
				return
			}
			sys, code, err := ParseKey(measure)
			if err != nil {
				return
			}
			obs, _, err := s.search(ctx, "Observation", url.Values{"code": {sys + "|" + code}, "_sort": {"-date"}}, 1)
			if err != nil {
				errs[i] = err
				return
			}
			if len(obs) > 0 {
				r := s.result(obs[0], s.lang)
				r.Trend, r.Key = true, measure
				out[i].Latest = &r
			}
		}
	}
	s.b.parallel(fns...)
	for _, e := range errs {
		if e != nil && firstErr == nil {
			firstErr = e
		}
	}
	return out, firstErr
}
