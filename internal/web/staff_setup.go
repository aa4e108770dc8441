package web

import (
	"net/http"

	"carefront/internal/session"
)

// Staff setup: the one-time link from `carefront staff create` leads to a
// password and an authenticator app.

func (s *Server) showStaffSetup(w http.ResponseWriter, r *http.Request) error {
	f := newForm()
	f.Values["code"] = r.URL.Query().Get("code")
	a, err := s.opts.Auth.Store.StaffSetupAccount(r.Context(), f.Values["code"])
	if err != nil {
		f.Errors[""] = "staff.setup.invalid"
		return s.showForm(w, r, "staff_setup", "staff.setup.title", f, http.StatusNotFound)
	}
	f.Values["email"] = a.Email
	return s.showForm(w, r, "staff_setup", "staff.setup.title", f, http.StatusOK)
}

func (s *Server) submitStaffSetup(w http.ResponseWriter, r *http.Request) error {
	if s.limited(w, r) || s.hasherBusy(w, r) {
		return nil
	}
	ctx := r.Context()
	f := newForm()
	f.Values["code"] = r.PostFormValue("code")
	st := s.opts.Auth.Store
	a, err := st.StaffSetupAccount(ctx, f.Values["code"])
	if err != nil {
		f.Errors[""] = "staff.setup.invalid"
		return s.showForm(w, r, "staff_setup", "staff.setup.title", f, http.StatusNotFound)
	}
	f.Values["email"] = a.Email
	pw := r.PostFormValue("password")
	checkNewPassword(f, pw, r.PostFormValue("password2"), a.Email)
	if len(f.Errors) > 0 {
		return s.showForm(w, r, "staff_setup", "staff.setup.title", f, http.StatusUnprocessableEntity)
	}
	hash, err := s.opts.Auth.Hasher.Hash(ctx, pw)
	if err != nil {
		return err
	}
	if err := st.CompleteStaffSetup(ctx, f.Values["code"], a.ID, hash); err != nil {
		f.Errors[""] = "staff.setup.invalid"
		return s.showForm(w, r, "staff_setup", "staff.setup.title", f, http.StatusNotFound)
	}
	if err := s.startSession(w, r, a, session.LevelPassword); err != nil {
		return err
	}
	return redirect(w, r, "/mfa/setup")
}
