// Package fanout delivers one payload to many WebSocket connections through
// the API Gateway Management API (PostToConnection), concurrently and
// bounded, so that a slow or failing connection neither delays nor aborts
// the others. A post that is throttled (429), fails with a 5xx or times out
// is tried again with a jittered backoff while the broadcast's budget
// lasts; what still fails is counted in the Result.
//
// It also asks whether connections are still there (Probe, GET) and closes
// them (Close, DELETE). It reports which connections are gone (410) and
// leaves deleting them to the caller; it knows nothing of rooms or storage.
package fanout
