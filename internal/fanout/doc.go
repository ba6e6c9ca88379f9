// Package fanout delivers one payload to many WebSocket connections through
// the API Gateway Management API (PostToConnection), concurrently and
// bounded, so that a slow or failing connection neither delays nor aborts
// the others.
//
// It reports which connections are gone (410) and leaves deleting them to
// the caller; it knows nothing of rooms or storage.
package fanout
