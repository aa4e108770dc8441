package apperr

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestCodesStatusesAndMessages(t *testing.T) {
	cause := errors.New("pq: relation \"patient_secret\" does not exist")
	for _, tc := range []struct {
		name    string
		err     error
		code    Code
		status  int
		message string
	}{
		{"nil", nil, "", http.StatusInternalServerError, "Something went wrong on our side. Please try again later."},
		{"plain error", cause, Internal, 500, "Something went wrong on our side. Please try again later."},
		{"coded", New(NotFound, "Observation/%s is not known", "x"), NotFound, 404, "Observation/x is not known"},
		{"wrapped cause", Wrap(cause, Unavailable, "the records cannot be reached"), Unavailable, 503, "the records cannot be reached"},
		{"wrapped further", fmt.Errorf("read: %w", New(Precondition, "stale")), Precondition, 412, "stale"},
		{"gone", New(Gone, "deleted"), Gone, 410, "deleted"},
		{"rate limited", New(RateLimited, "wait"), RateLimited, 429, "wait"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil {
				if CodeOf(nil) != "" {
					t.Errorf("CodeOf(nil) = %q", CodeOf(nil))
				}
				return
			}
			if got := CodeOf(tc.err); got != tc.code {
				t.Errorf("CodeOf = %q, want %q", got, tc.code)
			}
			if got := HTTPStatus(tc.err); got != tc.status {
				t.Errorf("HTTPStatus = %d, want %d", got, tc.status)
			}
			msg := MessageOf(tc.err)
			if msg != tc.message {
				t.Errorf("MessageOf = %q, want %q", msg, tc.message)
			}
			if strings.Contains(msg, "patient_secret") {
				t.Error("an internal cause reached the user-safe message")
			}
		})
	}
	// The cause stays reachable for logs.
	if err := Wrap(cause, Internal, "x"); !errors.Is(err, cause) {
		t.Error("Wrap lost its cause")
	}
}

// TestFieldErrors: a field error carries its code to CodeOf and the
// status table; Fields finds each one in a joined or wrapped error, in
// order, and nothing in an error that has none.
func TestFieldErrors(t *testing.T) {
	a := NewField(Conflict, "slot", "book.slot-taken", "that time was just booked")
	b := NewField(Invalid, "reason", "book.reason-long", "say it in up to %d characters", 500).WithBound("500")
	if CodeOf(a) != Conflict || CodeOf(fmt.Errorf("x: %w", b)) != Invalid || !strings.Contains(b.Error(), "500 characters") {
		t.Errorf("codes: %s %s %q", CodeOf(a), CodeOf(b), b.Error())
	}
	for _, err := range []error{
		errors.Join(a, errors.New("plain"), fmt.Errorf("wrapped: %w", b)),
		fmt.Errorf("booking: %w", errors.Join(a, errors.New("plain"), b)),
	} {
		got := Fields(err)
		if len(got) != 2 || got[0] != a || got[1] != b || got[1].Bound != "500" {
			t.Errorf("Fields(%v) = %v", err, got)
		}
	}
	if Fields(nil) != nil || Fields(New(Invalid, "x")) != nil || Fields(errors.New("plain")) != nil {
		t.Error("Fields found field errors where there are none")
	}
}
