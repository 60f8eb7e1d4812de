package api

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"pkid/errs"
	"pkid/internal/audit"
	"pkid/internal/respond"
)

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

const problemBase = "https://pkid.dev/problems/"

// statusOf is the one mapping from error kinds to HTTP status codes for the
// REST API (ACME has its own in package acme).
var statusOf = map[errs.Kind]int{
	errs.Internal:            http.StatusInternalServerError,
	errs.Malformed:           http.StatusBadRequest,
	errs.BadCSR:              http.StatusBadRequest,
	errs.BadRevocationReason: http.StatusBadRequest,
	errs.Unauthorized:        http.StatusUnauthorized,
	errs.Forbidden:           http.StatusForbidden,
	errs.RejectedIdentifier:  http.StatusForbidden,
	errs.NotFound:            http.StatusNotFound,
	errs.Conflict:            http.StatusConflict,
	errs.AlreadyRevoked:      http.StatusConflict,
	errs.TooLarge:            http.StatusRequestEntityTooLarge,
	errs.RateLimited:         http.StatusTooManyRequests,
	errs.Unavailable:         http.StatusServiceUnavailable,
}

var titleOf = map[errs.Kind]string{
	errs.Internal: "Internal error", errs.Malformed: "Malformed request", errs.BadCSR: "Bad CSR",
	errs.BadRevocationReason: "Bad revocation reason", errs.Unauthorized: "Unauthorized",
	errs.Forbidden: "Forbidden by policy", errs.RejectedIdentifier: "Name not allowed",
	errs.NotFound: "Not found", errs.Conflict: "Conflict", errs.AlreadyRevoked: "Already revoked",
	errs.TooLarge: "Request too large", errs.RateLimited: "Too many requests",
	errs.Unavailable: "Service unavailable",
}

// writeProblem renders err. Internal errors are logged with their cause and
// shown to the client only as a generic detail.
func writeProblem(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	k := errs.KindOf(err)
	if k == errs.Internal {
		log.ErrorContext(r.Context(), "internal error", "err", err, "path", r.URL.Path, "request_id", audit.RequestID(r.Context()))
	}
	p := Problem{Type: problemBase + k.String(), Title: titleOf[k], Status: statusOf[k], Detail: errs.DetailOf(err)}
	if l := errs.LimitOf(err); l != "" {
		if slot, ok := r.Context().Value(keyRoute).(*routeSlot); ok {
			slot.limit = l // the middleware counts it
		}
	}
	if k == errs.Unauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="pkid"`)
	}
	if d := errs.RetryAfterOf(err); d > 0 {
		w.Header().Set("Retry-After", errs.RetryAfterSeconds(d))
	}
	w.Header().Set("Cache-Control", "no-store")
	respond.JSON(w, p.Status, "application/problem+json", p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store")
	respond.JSON(w, status, "application/json", v)
}

// decodeJSON reads exactly one JSON object with no unknown fields.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errs.Wrap(errs.Malformed, err, "request body: %s", jsonProblem(err, v))
	}
	if dec.More() {
		return errs.New(errs.Malformed, "request body holds more than one JSON value")
	}
	return nil
}
