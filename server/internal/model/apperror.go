package model

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// AppError is Mattermost's error body. ID is the stable machine code a client
// branches on; Message is for people; DetailedError may carry more context
// and is only sent to clients when ServiceSettings.EnableDeveloper is set.
type AppError struct {
	ID            string `json:"id"`
	Message       string `json:"message"`
	DetailedError string `json:"detailed_error"`
	RequestID     string `json:"request_id,omitempty"`
	StatusCode    int    `json:"status_code,omitempty"`
	// Where names the operation that failed; logged, never sent.
	Where string `json:"-"`
	// Err is the underlying cause; logged, never sent.
	Err error `json:"-"`
}

// NewAppError returns an AppError with the given status, id and message.
func NewAppError(where, id string, status int, message string) *AppError {
	return &AppError{ID: id, Message: message, StatusCode: status, Where: where}
}

// Error implements error.
func (e *AppError) Error() string {
	s := e.Where + ": " + e.Message
	if e.DetailedError != "" {
		s += ", " + e.DetailedError
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying cause.
func (e *AppError) Unwrap() error { return e.Err }

// Wrap returns a copy of e with the cause set.
func (e *AppError) Wrap(err error) *AppError {
	c := *e
	c.Err = err
	return &c
}

// Detail returns a copy of e with a detailed error message.
func (e *AppError) Detail(format string, args ...any) *AppError {
	c := *e
	c.DetailedError = fmt.Sprintf(format, args...)
	return &c
}

// JSON renders e as the wire body.
func (e *AppError) JSON() []byte {
	b, _ := json.Marshal(e)
	return b
}

// Common errors, with Mattermost's ids.

// ErrInvalidBody builds the 400 for a bad or missing body field.
func ErrInvalidBody(where, field string) *AppError {
	return &AppError{
		ID: "api.context.invalid_body_param.app_error", StatusCode: http.StatusBadRequest, Where: where,
		Message: "Invalid or missing " + field + " in request body.",
	}
}

// ErrInvalidURLParam builds the 400 for a bad URL or query parameter.
func ErrInvalidURLParam(where, param string) *AppError {
	return &AppError{
		ID: "api.context.invalid_url_param.app_error", StatusCode: http.StatusBadRequest, Where: where,
		Message: "Invalid or missing " + param + " parameter in request URL.",
	}
}

// ErrPermission builds the 403 for a failed permission check.
func ErrPermission(where, userID, permission string) *AppError {
	return &AppError{
		ID: "api.context.permissions.app_error", StatusCode: http.StatusForbidden, Where: where,
		Message:       "You do not have the appropriate permissions.",
		DetailedError: "userId=" + userID + ", permission=" + permission,
	}
}

// ErrSessionExpired builds the 401 for a missing, invalid or expired session.
func ErrSessionExpired(where string) *AppError {
	return &AppError{
		ID: "api.context.session_expired.app_error", StatusCode: http.StatusUnauthorized, Where: where,
		Message: "Invalid or expired session, please login again.",
	}
}

// ErrNotFound builds a 404 for a missing object of the given kind.
func ErrNotFound(where, id, kind string) *AppError {
	return &AppError{
		ID: id, StatusCode: http.StatusNotFound, Where: where,
		Message: "Unable to find the " + kind + ".",
	}
}

// AppErrorJSON renders e for a WebSocket reply's "error" (the ws hub
// sends errors that have this method verbatim).
func (e *AppError) AppErrorJSON() []byte { return e.JSON() }
