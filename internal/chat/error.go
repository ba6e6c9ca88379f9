package chat

import (
	"errors"
	"fmt"
	"time"
)

// Error codes sent to clients in error frames. docs/protocol.md explains each.
const (
	CodeBadJSON        = "bad_json"        // the frame is not a JSON object
	CodeUnknownAction  = "unknown_action"  // "action" is missing or names no route
	CodeInvalidMessage = "invalid_message" // a field is missing, empty or malformed
	CodeTooLong        = "too_long"        // a field is longer than its limit
	CodeInvalidFrame   = "invalid_frame"   // "frame" is not the next number, or not a number
	CodeOutOfOrder     = "out_of_order"    // the frame before this one has not come; send the unacknowledged ones again
	CodeNotConnected   = "not_connected"   // the server has no record of this connection; it is closed
	CodeRateLimited    = "rate_limited"    // too many frames: send this one again after RetryAfter
	CodeInternal       = "internal"        // the server failed; the client may retry
	CodeGone           = "gone"            // the message a change or reply names is not there (deleted, expired, never was)
	CodeNotAllowed     = "not_allowed"     // only a message's author may edit or delete it
	CodeTooLate        = "too_late"        // the time to edit the message is over
	CodeMuted          = "muted"           // a moderator muted the user here: nothing they write is stored until retryAfterMs
)

// Error is a protocol error: a code from the list above and a message meant
// for the person using the client. Causes are logged, never sent.
type Error struct {
	Code    string
	Message string
	// RetryAfter, for CodeRateLimited, is how long to wait before sending
	// the frame again.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// ErrorCode returns the protocol code for err: its own if it is (or wraps)
// an *Error, CodeNotConnected for ErrNoConnection, CodeInternal for
// anything else.
func ErrorCode(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	if errors.Is(err, ErrNoConnection) {
		return CodeNotConnected
	}
	return CodeInternal
}

// ErrorMessage returns the text to show a client for err. Internal errors get
// a fixed text so that no cause leaks.
func ErrorMessage(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Message
	}
	if errors.Is(err, ErrNoConnection) {
		return "the server has no record of this connection; it is closed: reconnect"
	}
	return "the server could not handle this frame; try again"
}

// Errorf returns a protocol error.
func Errorf(code, msg string) *Error { return &Error{Code: code, Message: msg} }

// FrameError is the error for a new-message frame numbered frame on a
// connection whose last stored frame is last, when frame is not last+1:
// invalid_frame for a number already used, out_of_order for one whose
// predecessor has not come in time (the frame keeps its number).
func FrameError(last, frame int64) error {
	if frame <= last {
		return Errorf(CodeInvalidFrame, fmt.Sprintf("frame %d was already used on this connection (the last was %d)", frame, last))
	}
	return Errorf(CodeOutOfOrder, fmt.Sprintf("frame %d came but frame %d has not; send the frames not acknowledged again, in order, with their numbers", frame, last+1))
}

// Muted is the error for a write of a user muted until until.
func Muted(until, now time.Time) error {
	return &Error{Code: CodeMuted, RetryAfter: until.Sub(now), Message: fmt.Sprintf(
		"a moderator has muted you in this room until %s UTC", until.UTC().Format("2006-01-02 15:04"))}
}

// RateLimited is the error for a frame that came sooner than its rate
// limit allows; it may be sent again after wait.
func RateLimited(r Rate, wait time.Duration) error {
	return &Error{Code: CodeRateLimited, RetryAfter: wait, Message: fmt.Sprintf(
		"too many %s frames: at most %g a second, %d at once; send this again in %d ms", r.What, r.PerSecond, r.Burst, wait.Milliseconds())}
}

// RetryAfter returns how long err says to wait before trying again; 0 for
// anything but a rate_limited error.
func RetryAfter(err error) time.Duration {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.RetryAfter
	}
	return 0
}
