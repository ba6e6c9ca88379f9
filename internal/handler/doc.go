// Package handler holds the Lambda handlers behind the WebSocket API's
// routes: Connect ($connect), Disconnect ($disconnect) and Message (every
// other route: new-message, sync, typing, ping, presence and $default).
//
// Handlers take API Gateway events and answer as API Gateway expects. Every
// expected outcome (a rejected handshake, an error frame) is a response with
// a nil error; a Go error is returned only for failures Lambda should count,
// and panics are recovered into a 500. The interfaces the handlers need are
// declared here, where they are used; internal/app wires the real ones.
package handler
