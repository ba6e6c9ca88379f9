package localgw

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/coder/websocket"
)

// manage serves the Management API for one connection id: POST sends a
// frame, GET describes the connection, DELETE closes it. Requests must be
// SigV4-signed (any key) and allowed by Callers, when set.
func (g *Gateway) manage(w http.ResponseWriter, r *http.Request, rawID string) {
	id, err := url.PathUnescape(rawID)
	if err != nil || !validConnectionID(id) {
		apiError(w, http.StatusBadRequest, "BadRequestException", "Invalid connectionId: "+rawID)
		return
	}
	if !g.authorize(w, r, id) {
		return
	}
	if g.callbacks != nil && !g.callbacks.Allow() {
		apiError(w, http.StatusTooManyRequests, "LimitExceededException", "Rate exceeded")
		return
	}
	c := g.lookup(r.Context(), id)
	if c == nil {
		apiError(w, http.StatusGone, "GoneException", "")
		return
	}
	switch r.Method {
	case http.MethodPost:
		body, err := io.ReadAll(io.LimitReader(r.Body, g.cfg.Limits.MaxMessageBytes+1))
		if err != nil {
			apiError(w, http.StatusBadRequest, "BadRequestException", "could not read the body")
			return
		}
		if int64(len(body)) > g.cfg.Limits.MaxMessageBytes {
			apiError(w, http.StatusRequestEntityTooLarge, "PayloadTooLargeException", "Message too long")
			return
		}
		switch g.faults.post() {
		case postThrottled:
			apiError(w, http.StatusTooManyRequests, "LimitExceededException", "Rate exceeded")
			return
		case postFailed:
			apiError(w, http.StatusInternalServerError, "InternalServerErrorException", "Internal server error")
			return
		case postSlow:
			time.Sleep(g.faults.PostDelay)
		}
		if err := g.send(c, body); err != nil {
			apiError(w, http.StatusGone, "GoneException", "")
			return
		}
		w.WriteHeader(http.StatusOK)
	case http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"connectedAt":  c.connectedAt.UTC().Format(timeFormat),
			"lastActiveAt": time.UnixMilli(c.lastActive.Load()).UTC().Format(timeFormat),
			"identity":     map[string]string{"sourceIp": c.identity.SourceIP, "userAgent": c.identity.UserAgent},
		})
	case http.MethodDelete:
		// What API Gateway reports to $disconnect after a DELETE (seen in its
		// execution logs: boto/boto3#3789).
		c.close(websocket.StatusNormalClosure, "Connection Closed Normally")
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		apiError(w, http.StatusMethodNotAllowed, "BadRequestException", "method not allowed")
	}
}

const timeFormat = "2006-01-02T15:04:05.000Z"

// apiError answers in the shape the AWS SDKs parse: the error code in the
// X-Amzn-ErrorType header and the body's __type.
func apiError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	body := map[string]any{"__type": code, "message": nil}
	if msg != "" {
		body["message"] = msg
	}
	json.NewEncoder(w).Encode(body)
}
