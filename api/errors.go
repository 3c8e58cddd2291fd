package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store"
)

// gRPC status codes, as KFP's grpc-gateway writes them in error bodies.
const (
	codeInvalidArgument    = 3
	codeNotFound           = 5
	codeAlreadyExists      = 6
	codePermissionDenied   = 7
	codeFailedPrecondition = 9
	codeUnimplemented      = 12
	codeInternal           = 13
	codeUnavailable        = 14
	codeUnauthenticated    = 16
)

var httpStatus = map[int]int{
	codeInvalidArgument:    http.StatusBadRequest,
	codeNotFound:           http.StatusNotFound,
	codeAlreadyExists:      http.StatusConflict,
	codePermissionDenied:   http.StatusForbidden,
	codeFailedPrecondition: http.StatusBadRequest,
	codeUnimplemented:      http.StatusNotImplemented,
	codeInternal:           http.StatusInternalServerError,
	codeUnavailable:        http.StatusServiceUnavailable,
	codeUnauthenticated:    http.StatusUnauthorized,
}

// Error is an API error: the body {code, message, details} of a failed
// request, with the gRPC code KFP uses. Clients get it back from Client
// calls (test with errors.As).
type Error struct {
	Code    int               `json:"code"`
	Message string            `json:"message"`
	Details []json.RawMessage `json:"details"`
	// Status is the HTTP status (not serialised).
	Status int `json:"-"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.HTTPStatus())
}

// HTTPStatus is the HTTP status that goes with the code.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	if s, ok := httpStatus[e.Code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

func apiErr(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Details: []json.RawMessage{}}
}

func badRequest(format string, args ...any) *Error {
	return apiErr(codeInvalidArgument, format, args...)
}

// tooLarge is a 413: the request (or what it expands to) is over a limit,
// which the message names.
func tooLarge(format string, args ...any) *Error {
	e := badRequest(format, args...)
	e.Status = http.StatusRequestEntityTooLarge
	return e
}

func notFound(kind, id string) *Error {
	return apiErr(codeNotFound, "%s %q not found", kind, id)
}

// toAPIError maps any error to an *Error.
func toAPIError(err error) *Error {
	var ae *Error
	var ve *spec.ValidationError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &ve):
		e := badRequest("%v", ve)
		for _, fe := range ve.Errors {
			d, _ := json.Marshal(map[string]string{"@type": "type.googleapis.com/google.rpc.BadRequest.FieldViolation", "field": fe.Path, "description": fe.Msg})
			e.Details = append(e.Details, d)
		}
		if errors.Is(err, spec.ErrTooLarge) {
			e.Status = http.StatusRequestEntityTooLarge
		}
		return e
	case errors.Is(err, store.ErrNotFound):
		return apiErr(codeNotFound, "%v", err)
	case errors.Is(err, engine.ErrUnknownExecutor):
		return badRequest("%v", err)
	case errors.Is(err, engine.ErrRunFinished), errors.Is(err, engine.ErrNotRetryable):
		return apiErr(codeFailedPrecondition, "%v", err)
	case errors.Is(err, store.ErrNotLeader), errors.Is(err, store.ErrClosed), errors.Is(err, engine.ErrStopped):
		return apiErr(codeUnavailable, "%v", err)
	}
	return apiErr(codeInternal, "%v", err)
}
