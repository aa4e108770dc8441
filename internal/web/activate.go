package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/identity"
	"carefront/internal/session"
)

// Activation: an invite code, date of birth and last name prove a person
// is the patient of a record; they choose a password and an email address.

func (s *Server) showActivate(w http.ResponseWriter, r *http.Request) error {
	f := newForm()
	f.Values["code"] = r.URL.Query().Get("code")
	return s.showForm(w, r, "activate", "activate.title", f, http.StatusOK)
}

func (s *Server) submitActivate(w http.ResponseWriter, r *http.Request) error {
	if s.limited(w, r) || s.hasherBusy(w, r) {
		return nil
	}
	f := newForm()
	for _, k := range []string{"code", "family", "month", "day", "year", "email"} {
		f.Values[k] = strings.TrimSpace(r.PostFormValue(k))
	}
	pw, pw2 := r.PostFormValue("password"), r.PostFormValue("password2")
	required := map[string]string{"code": "activate.code.missing", "family": "activate.family.missing", "email": "activate.email.missing"}
	for k, id := range required {
		if f.Values[k] == "" {
			f.Errors[k] = id
		}
	}
	dob, ok := birthDate(f.Values["year"], f.Values["month"], f.Values["day"])
	if !ok {
		f.Errors["dob"] = "activate.dob.invalid"
	}
	if _, err := identity.NormalizeEmail(f.Values["email"]); err != nil && f.Values["email"] != "" {
		f.Errors["email"] = "activate.email.invalid"
	}
	checkNewPassword(f, pw, pw2, f.Values["email"], f.Values["family"])
	if len(f.Errors) > 0 {
		return s.showForm(w, r, "activate", "activate.title", f, http.StatusUnprocessableEntity)
	}
	ctx := r.Context()
	auth := s.opts.Auth
	patientID, err := auth.Store.CheckActivation(ctx, f.Values["code"], identity.Demographics{BirthDate: dob, FamilyName: f.Values["family"]}, s.opts.Lookup)
	if errors.Is(err, identity.ErrActivation) {
		if err := auth.ActivationEvent(ctx, nil, "", "activation-refused", clientAddr(r)); err != nil {
			return err
		}
		f.Errors[""] = "activate.nomatch"
		return s.showForm(w, r, "activate", "activate.title", f, http.StatusUnprocessableEntity)
	}
	if errors.Is(err, identity.ErrPatientHasAccount) {
		if err := auth.ActivationEvent(ctx, nil, patientID, "activation-record-has-account", clientAddr(r)); err != nil {
			return err
		}
		f.Errors[""] = "activate.has.account"
		return s.showForm(w, r, "activate", "activate.title", f, http.StatusConflict)
	}
	if err != nil {
		return err
	}
	hash, err := auth.Hasher.Hash(ctx, pw)
	if errors.Is(err, identity.ErrBusy) {
		w.Header().Set("Retry-After", "2")
		return apperr.New(apperr.RateLimited, "busy")
	}
	if err != nil {
		return err
	}
	acct := &identity.Account{Email: f.Values["email"], PasswordHash: hash}
	switch err := auth.Store.Activate(ctx, f.Values["code"], patientID, acct); {
	case errors.Is(err, identity.ErrPatientHasAccount):
		if err := auth.ActivationEvent(ctx, nil, patientID, "activation-record-has-account", clientAddr(r)); err != nil {
			return err
		}
		f.Errors[""] = "activate.has.account"
		return s.showForm(w, r, "activate", "activate.title", f, http.StatusConflict)
	case apperr.CodeOf(err) == apperr.Conflict:
		f.Errors["email"] = "activate.email.taken"
		return s.showForm(w, r, "activate", "activate.title", f, http.StatusConflict)
	case errors.Is(err, identity.ErrActivation):
		f.Errors[""] = "activate.nomatch"
		return s.showForm(w, r, "activate", "activate.title", f, http.StatusUnprocessableEntity)
	case err != nil:
		return err
	}
	if err := auth.ActivationEvent(ctx, acct, patientID, "account-activated", clientAddr(r)); err != nil {
		return err
	}
	if err := s.startSession(w, r, acct, session.LevelPassword); err != nil {
		return err
	}
	// The address given must be proven before anything else.
	if err := auth.StartEmailVerification(ctx, acct); err != nil {
		return err
	}
	return redirect(w, r, "/activate/email")
}

// birthDate reads the memorable-date fields into YYYY-MM-DD.
func birthDate(y, m, d string) (string, bool) {
	yy, e1 := strconv.Atoi(y)
	mm, e2 := strconv.Atoi(m)
	dd, e3 := strconv.Atoi(d)
	if e1 != nil || e2 != nil || e3 != nil || yy < 1900 || yy > 2100 {
		return "", false
	}
	t := time.Date(yy, time.Month(mm), dd, 0, 0, 0, 0, time.UTC)
	if t.Month() != time.Month(mm) || t.Day() != dd {
		return "", false
	}
	return t.Format("2006-01-02"), true
}
