// Package chatclient is a Go client of the chat protocol (docs/protocol.md,
// version 5) that keeps every promise the protocol asks of a client, as the
// page does: it numbers its write frames (messages, which may reply and
// mention, and edits, deletes and reactions) and resends what was not
// acknowledged, in order; it holds the room's messages by seq (and the
// seqs declared skipped), each in the state of the highest version its
// changes brought, and fetches any gap, later and later while it
// stays open; it applies join and leave by version and reconciles with
// every sync; it pings and reconnects. Under overload it sheds, never
// amplifies: at most a window of frames unanswered, one resend wave per
// backoff however many error frames come, rate-limited frames again when
// told and paced.
//
// The load tool (cmd/chatload) and the end-to-end tests use it to check
// what the server promises. It speaks WebSocket and the protocol only: no
// AWS code.
package chatclient
