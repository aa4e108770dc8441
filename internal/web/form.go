package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/identity"
)

// What the identity forms share: the values typed and the errors by
// field, per-address limits and the answers past them.

// limited applies the per-address limit to sign-in forms; it answers 429
// with Retry-After and reports false when over it.
func (s *Server) limited(w http.ResponseWriter, r *http.Request) bool {
	return s.limitedBy(s.opts.Limiter, w, r)
}

func (s *Server) limitedBy(l Limiter, w http.ResponseWriter, r *http.Request) bool {
	if l == nil {
		return false
	}
	ok, wait := l.Allow(r.Context(), clientAddr(r))
	if ok {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
	s.renderError(w, r, apperr.New(apperr.RateLimited, "too many attempts from this address"))
	return true
}

// hasherBusy answers 429 at once when every password-hashing slot is
// taken: past capacity, a sign-in is refused fast instead of queued.
func (s *Server) hasherBusy(w http.ResponseWriter, r *http.Request) bool {
	if !s.opts.Auth.Hasher.Busy() {
		return false
	}
	w.Header().Set("Retry-After", "2")
	s.renderError(w, r, apperr.New(apperr.RateLimited, "too many sign-ins at once"))
	return true
}

// checkNewPassword puts the policy's complaint about a new password, or
// the confirmation's, beside its field.
func checkNewPassword(f *form, pw, again string, personal ...string) {
	var pe *identity.PolicyError
	if err := identity.CheckPassword(pw, personal...); errors.As(err, &pe) {
		f.Errors["password"] = "password." + strings.TrimPrefix(pe.Code, "password-")
	} else if pw != again {
		f.Errors["password2"] = "activate.password2.mismatch"
	}
}

// throttled shows a form again with how long to wait, and Retry-After.
func (s *Server) throttled(w http.ResponseWriter, r *http.Request, f *form, name, title string, wait time.Duration) error {
	secs := int(wait.Seconds()) + 1
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	f.Errors[""] = "signin.throttled"
	f.Extra["Wait"] = secs
	return s.showForm(w, r, name, title, f, http.StatusTooManyRequests)
}

// form is what an identity page shows: the values typed (never passwords
// or codes) and the errors, by field.
type form struct {
	Values map[string]string
	Errors map[string]string // field -> catalogue id; "" for the form as a whole
	Extra  map[string]any
}

func newForm() *form {
	return &form{Values: map[string]string{}, Errors: map[string]string{}, Extra: map[string]any{}}
}

// Error returns the catalogue id of a field's error.
func (f *form) Error(field string) string { return f.Errors[field] }

func (s *Server) showForm(w http.ResponseWriter, r *http.Request, name, title string, f *form, status int) error {
	p := s.newPage(w, r, title)
	p.Status = status
	p.Data = f
	return s.render(w, r, name, p)
}

func redirect(w http.ResponseWriter, r *http.Request, to string) error {
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}
