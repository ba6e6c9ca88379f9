// Package chat is the chat protocol and its domain values: the frames a
// client sends and the events the server sends back, their validation, the
// error codes, message ids and the limits that bound them.
//
// It imports no AWS code: the handlers translate between API Gateway events
// and these types. The contract it implements is docs/protocol.md; a test
// keeps the examples in that document parsing.
package chat
