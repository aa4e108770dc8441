package views

import (
	"context"
	"net/url"
	"slices"
	"time"

	"carefront/internal/clinical"
)

// Home is the signed-in home page: the next visit, new results, the
// medicines taken now, open goals and one security nudge, each block
// linking to its page.
type Home struct {
	Next *Visit `json:"nextVisit,omitempty"`
	// NewResults are results since the last sign-in (the last 90 days on
	// a first), newest first, at most homeResults.
	NewResults []Result `json:"newResults"`
	// LatestResults, when there are no new results, are the newest ones.
	LatestResults []Result `json:"latestResults,omitempty"`
	// MoreResults counts the new results beyond those listed.
	MoreResults int `json:"moreResults,omitempty"`
	// HeldResults counts results ready but waiting for review.
	HeldResults int          `json:"heldResults,omitempty"`
	Medications []Medication `json:"medications"`
	Goals       []Goal       `json:"goals"`
	Nudge       *Nudge       `json:"nudge,omitempty"`
	// Empty reports whether the record has nothing to show yet.
	Empty       bool    `json:"empty"`
	Unavailable []Block `json:"unavailable,omitempty"`
}

// Nudge is the one security suggestion the home page shows.
type Nudge struct {
	// Kind is add-passkey or few-recovery-codes.
	Kind  string `json:"kind"`
	Count int    `json:"count,omitempty"`
}

// HomeInput is what the home view needs from outside the record.
type HomeInput struct {
	// Since is the person's previous sign-in; zero on their first.
	Since time.Time
	// Passkeys and RecoveryCodesLeft are the account's, for the nudge.
	Passkeys          int
	RecoveryCodesLeft int
	Lang              string
}

const homeResults = 5

// Home builds the home view; its blocks are read in parallel, and a block
// whose source cannot answer says so while the others show.
func (b *Builder) Home(ctx context.Context, req clinical.Request, in HomeInput) (*Home, error) {
	s, err := b.open(ctx, req, "home", in.Lang)
	if err != nil {
		return nil, err
	}
	key, cacheable := b.Cache.key(s, "home", in.Since.UnixMicro(), in.Passkeys, in.RecoveryCodesLeft, in.Lang)
	if cacheable {
		if e, ok := b.Cache.get(key); ok {
			s.v.Served(e.types)
			return done(ctx, s, e.v.(*Home), nil)
		}
	}
	out, err := s.home(ctx, in)
	types := s.v.Types()
	out, err = done(ctx, s, out, err)
	if err == nil && cacheable && len(out.Unavailable) == 0 {
		b.Cache.put(key, out, types) // only a view whose access is on record
	}
	return out, err
}

func (s *session) home(ctx context.Context, in HomeInput) (*Home, error) {
	now := s.b.now()
	since := in.Since
	if since.IsZero() {
		since = now.AddDate(0, 0, -90)
	}
	out := &Home{NewResults: []Result{}, Medications: []Medication{}, Goals: []Goal{}}
	errs := make([]error, 4)
	var appts, obs, held []map[string]any // appts is read by its own block only
	var meds *Medications
	s.b.parallel(
		func() {
			appts, _, errs[0] = s.search(ctx, "Appointment", url.Values{"date": {"ge" + now.Add(-time.Hour).UTC().Format(time.RFC3339)},
				"status": {"booked,arrived,checked-in,pending,proposed"}, "_sort": {"date"}}, 5)
			for _, a := range appts {
				v := s.appointment(ctx, a)
				if v.Start.After(now.Add(-time.Hour)) {
					out.Next = &v
					break
				}
			}
		},
		func() {
			obs, held, errs[1] = s.search(ctx, "Observation", url.Values{"date": {"gt" + since.UTC().Format(time.RFC3339)}, "_sort": {"-date"}}, 100)
		},
		func() { meds, errs[2] = s.medications(ctx, true) },
		func() { out.Goals, errs[3] = s.goals(ctx) },
	)
	for i, b := range []Block{BlockAppointments, BlockResults, BlockMedications, BlockGoals} {
		un, fatal := blockErr(errs[i])
		if fatal != nil {
			return nil, fatal
		}
		if un {
			out.Unavailable = append(out.Unavailable, b)
		}
	}
	if out.Goals == nil {
		out.Goals = []Goal{}
	}
	for _, m := range obs {
		if len(out.NewResults) == homeResults {
			out.MoreResults++
			continue
		}
		r := s.result(m, in.Lang)
		r.Trend = r.Key != "" && hasNumber(m) // its page shows even one result
		out.NewResults = append(out.NewResults, r)
	}

	out.HeldResults = len(heldResults(nil, held))
	if meds != nil {
		out.Medications = meds.Active
	}
	switch {
	case in.Passkeys == 0:
		out.Nudge = &Nudge{Kind: "add-passkey"}
	case in.RecoveryCodesLeft <= 2:
		out.Nudge = &Nudge{Kind: "few-recovery-codes", Count: in.RecoveryCodesLeft}
	}
	if len(out.NewResults) == 0 && errs[1] == nil {
		latest, _, err := s.search(ctx, "Observation", url.Values{"_sort": {"-date"}}, homeResults)
		if un, fatal := blockErr(err); fatal != nil {
			return nil, fatal
		} else if un {
			out.Unavailable = append(out.Unavailable, BlockResults)
		}
		for _, m := range latest {
			r := s.result(m, in.Lang)
			r.Trend = r.Key != "" && hasNumber(m)
			out.LatestResults = append(out.LatestResults, r)
		}
	}
	if out.Next == nil && len(out.NewResults) == 0 && len(out.LatestResults) == 0 && len(out.Medications) == 0 &&
		len(out.Goals) == 0 && out.HeldResults == 0 && len(out.Unavailable) == 0 {
		// Nothing for the blocks: say the record is empty only if it is.
		any, _, err := s.search(ctx, "Encounter", url.Values{}, 1)
		if err != nil {
			return nil, err
		}
		out.Empty = len(any) == 0
	}
	slices.SortStableFunc(out.Medications, func(a, b Medication) int { return compareText(a.Name, b.Name) })
	return out, nil
}

func compareText(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
