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

// FieldError is input a person gave that cannot be acted on, with where
// the form shows why: Field names the form field it belongs beside (""
// for the form as a whole), Key is the message catalogue id of what the
// page says there ("book.slot-taken"), and Bound is a number that message
// names (a maximum, a length), or "". It wraps an *Error, so CodeOf and
// the status table see its code, and its message is as safe to show.
type FieldError struct {
	Field, Key, Bound string
	err               *Error
}

// NewField returns a FieldError of code with a user-safe message.
func NewField(code Code, field, key, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Key: key, err: New(code, format, args...)}
}

func (e *FieldError) Error() string { return e.err.Error() }
func (e *FieldError) Unwrap() error { return e.err }

// WithBound sets the number the message names and returns e.
func (e *FieldError) WithBound(bound string) *FieldError {
	e.Bound = bound
	return e
}

// Fields returns every FieldError in err's tree (errors joined with
// errors.Join, wrapped with %w), in order.
func Fields(err error) []*FieldError {
	switch e := err.(type) {
	case nil:
		return nil
	case *FieldError:
		return []*FieldError{e}
	case interface{ Unwrap() []error }:
		var out []*FieldError
		for _, inner := range e.Unwrap() {
			out = append(out, Fields(inner)...)
		}
		return out
	}
	return Fields(errors.Unwrap(err))
}
