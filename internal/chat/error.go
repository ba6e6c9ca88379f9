package chat

import "errors"

// Error codes sent to clients in error frames. docs/protocol.md explains each.
const (
	CodeBadJSON        = "bad_json"        // the frame is not a JSON object
	CodeUnknownAction  = "unknown_action"  // "action" is missing or names no route
	CodeInvalidMessage = "invalid_message" // a field is missing, empty or malformed
	CodeTooLong        = "too_long"        // a field is longer than its limit
	CodeInternal       = "internal"        // the server failed; the client may retry
)

// Error is a protocol error: a code from the list above and a message meant
// for the person using the client. Causes are logged, never sent.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// ErrorCode returns the protocol code for err: its own if it is (or wraps)
// an *Error, CodeInternal for anything else.
func ErrorCode(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the text to show a client for err. Internal errors get
// a fixed text so that no cause leaks.
func ErrorMessage(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Message
	}
	return "the server could not handle this frame; try again"
}

func errorf(code, msg string) *Error { return &Error{Code: code, Message: msg} }
