package localgw

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest" // its ResponseRecorder: a response without a socket
)

// InProcess is an http.RoundTripper that serves every request with
// Handler in the calling process, without a socket: the gateway's
// in-process functions reach its Management API through it. The handler
// sees the request as over HTTP and answers with the same status, headers
// and body; the caller's context still ends the call, and a handler that
// is slow, as an injected slow post is, runs on without holding the
// caller. What goes is writing and parsing each request and response
// twice over a local TCP connection (docs/benchmarks.md §13 measures it).
// Functions run outside the gateway (-lambda, -lambda-endpoint) use HTTP.
type InProcess struct {
	// Handler serves the requests: the Gateway. Set it before the first
	// request.
	Handler http.Handler
}

// RoundTrip serves req with t.Handler and returns its response, or the
// request context's error if that ends first. It reads and closes req's
// body first: the handler reads a copy, which it may go on reading after
// RoundTrip has returned.
func (t *InProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("in-process %s %s: read the body: %w", req.Method, req.URL.Path, err)
		}
	}
	if t.Handler == nil {
		return nil, fmt.Errorf("in-process %s %s: no handler", req.Method, req.URL.Path)
	}
	in := req.Clone(req.Context())
	in.Body, in.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	in.Host = cmp.Or(req.Host, req.URL.Host)
	in.RequestURI = req.URL.RequestURI()
	rec := httptest.NewRecorder()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil { // as the HTTP server does: the caller sees a failed call
				done <- fmt.Errorf("in-process %s %s: handler panicked: %v", req.Method, req.URL.Path, p)
			}
		}()
		t.Handler.ServeHTTP(rec, in)
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			return nil, err
		}
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}
