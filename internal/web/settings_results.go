package web

import (
	"net/http"
	"strconv"

	"carefront/internal/access"
	"carefront/internal/apperr"
)

// waitChoices are the waits the settings page offers, in days (0: show at
// once).
var waitChoices = []int{0, 3, 7, 14, access.MaxWaitDays}

type releaseRow struct {
	Category string
	Wait     int
}

type releasePage struct {
	Rows    []releaseRow
	Choices []int
	Saved   bool
}

// showResultSettings shows the patient's choice, per category of result,
// of seeing results at once or after their care team's review.
func (s *Server) showResultSettings(w http.ResponseWriter, r *http.Request) error {
	u, req := s.patient(w, r)
	if u == nil || s.selfOnly(w, r, req) {
		return nil
	}
	pol, err := s.opts.Policies.Policy(r.Context(), u.account.PatientID)
	if err != nil {
		return err
	}
	d := releasePage{Choices: waitChoices, Saved: r.URL.Query().Get("saved") == "1"}
	for _, c := range access.ReleaseCategories {
		d.Rows = append(d.Rows, releaseRow{Category: c, Wait: pol.Wait[c]})
	}
	return s.render(w, r, "settings_results", s.recordPage(w, r, "release.title", d))
}

// submitResultSettings saves the choices; a value that is not offered
// changes nothing.
func (s *Server) submitResultSettings(w http.ResponseWriter, r *http.Request) error {
	u, req := s.patient(w, r)
	if u == nil || s.selfOnly(w, r, req) {
		return nil
	}
	wait := map[string]int{}
	for _, c := range access.ReleaseCategories {
		v := r.PostFormValue("wait-" + c)
		if v == "" {
			continue
		}
		d, err := strconv.Atoi(v)
		if err != nil || d < 0 || d > access.MaxWaitDays {
			return apperr.New(apperr.Invalid, "wait-%s must be a number of days from 0 to %d", c, access.MaxWaitDays)
		}
		wait[c] = d
	}
	if len(wait) == 0 {
		return apperr.New(apperr.Invalid, "Choose when you want to see each kind of result.")
	}
	if err := s.opts.Policies.SetRelease(r.Context(), u.account.PatientID, wait, access.Change{User: "Person/" + u.account.ID, Address: clientAddr(r)}); err != nil {
		return err
	}
	return redirect(w, r, "/settings/results?saved=1")
}
