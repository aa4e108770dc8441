// Package apperr defines the coded errors every layer of carefront returns, so
// that one table maps them to HTTP status codes and user-safe messages.
//
// The Message of an Error is shown to end users and must never carry PHI,
// stack traces or internal details; the wrapped cause is for logs only, and
// logs never carry PHI either, so causes must hold ids and codes, not values.
package apperr

import (
	"errors"
	"fmt"
	"net/http"
)

// Code classifies an error for callers and for the HTTP status table.
type Code string

// The codes, after the ones in common use by HTTP and FHIR.
const (
	Invalid       Code = "invalid"
	NotFound      Code = "not_found"
	Unauthorized  Code = "unauthorized"
	Forbidden     Code = "forbidden"
	Conflict      Code = "conflict"
	TooLarge      Code = "too_large"
	RateLimited   Code = "rate_limited"
	Unavailable   Code = "unavailable"
	Internal      Code = "internal"
	NotAcceptable Code = "not_acceptable"
	Gone          Code = "gone"
	Precondition  Code = "precondition_failed"
)

var statusByCode = map[Code]int{
	Invalid:       http.StatusBadRequest,
	NotFound:      http.StatusNotFound,
	Unauthorized:  http.StatusUnauthorized,
	Forbidden:     http.StatusForbidden,
	Conflict:      http.StatusConflict,
	TooLarge:      http.StatusRequestEntityTooLarge,
	RateLimited:   http.StatusTooManyRequests,
	Unavailable:   http.StatusServiceUnavailable,
	Internal:      http.StatusInternalServerError,
	NotAcceptable: http.StatusNotAcceptable,
	Gone:          http.StatusGone,
	Precondition:  http.StatusPreconditionFailed,
}

// Error is an error that is safe to display to end users: Message is written
// for a person and holds no PHI. Cause is the internal reason, for logs only.
type Error struct {
	Code    Code
	Message string
	Cause   error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Cause }

// New returns an Error with a user-safe message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an Error with a user-safe message and an internal cause.
func Wrap(cause error, code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Cause: cause}
}

// CodeOf reports the code of the first Error in err's chain, Internal when
// there is none, and "" for a nil error.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return TooLarge
	}
	return Internal
}

// MessageOf reports the user-safe message for err. Errors without one get a
// generic sentence so that internal details never reach a page.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	switch CodeOf(err) {
	case TooLarge:
		return "The request is too large."
	default:
		return "Something went wrong on our side. Please try again later."
	}
}

// HTTPStatus reports the HTTP status code for err.
func HTTPStatus(err error) int {
	if s, ok := statusByCode[CodeOf(err)]; ok {
		return s
	}
	return http.StatusInternalServerError
}
