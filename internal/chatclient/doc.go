// Package chatclient is a Go client of the chat protocol (docs/protocol.md,
// version 2) that keeps every promise the protocol asks of a client, as the
// page does: it numbers its new-message frames and resends what was not
// acknowledged, in order, on a new connection; it holds the room's messages
// by seq and fetches any gap; it applies join and leave by version and
// reconciles with every sync; it pings and reconnects.
//
// The load tool (cmd/chatload) and the end-to-end tests use it to check
// what the server promises. It speaks WebSocket and the protocol only: no
// AWS code.
package chatclient
