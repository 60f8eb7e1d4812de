package api

import (
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"pkid/errs"
	"pkid/internal/audit"
)

type ctxKey int

const keyRoute ctxKey = iota

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (a backup lifts
// the write deadline).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// middleware adds a request ID, a body limit (maxBody bytes), panic
// recovery and one log line per request. Query strings and headers are
// never logged (tokens).
func (s *Server) middleware(next http.Handler, maxBody int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := s.reqID.next()
		slot := &routeSlot{}
		ctx := context.WithValue(audit.WithRequestID(r.Context(), id), keyRoute, slot)
		r = r.WithContext(ctx)
		w.Header().Set("X-Request-Id", id)
		// Clients check their clock against the CA's by it
		// (pkidclient.CAClockAhead). net/http sends the system clock's,
		// which is the CA's unless one was injected.
		if s.clockDate {
			w.Header().Set("Date", s.opts.Clock.Now().UTC().Format(http.TimeFormat))
		}
		if r.ContentLength > maxBody {
			r.Body = refusedBody{maxBody}
		} else {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		rec := &statusRecorder{ResponseWriter: w, status: 200}
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("panic", "panic", p, "stack", string(debug.Stack()), "request_id", id)
				writeProblem(rec, r, s.log, errs.New(errs.Internal, "panic"))
			}
			took := time.Since(start)
			s.metrics.observe(slot.template, rec.status, took)
			if slot.limit != "" {
				s.CountLimited(slot.limit)
			}
			if s.log.Enabled(ctx, slog.LevelDebug) {
				s.log.LogAttrs(ctx, slog.LevelDebug, "request", slog.String("method", r.Method), slog.String("path", r.URL.Path),
					slog.Int("status", rec.status), slog.Int64("ms", took.Milliseconds()), slog.String("request_id", id))
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// refusedBody stands for a body whose Content-Length is over the limit:
// its first read fails as the limit would, so every handler answers 413 as
// usual, but nothing of the body is read. Reading it would send a waiting
// client (curl sends Expect: 100-continue) "100 Continue", and the server,
// refusing megabytes it had asked for, reset the connection under the
// client's upload: curl saw "broken pipe", never the 413.
type refusedBody struct{ limit int64 }

func (b refusedBody) Read([]byte) (int, error) { return 0, &http.MaxBytesError{Limit: b.limit} }
func (b refusedBody) Close() error             { return nil }

// logAudit writes one audit line: who, what, which role and names, the
// outcome, the serial and the reason. Never a secret or a key.
func (s *Server) logAudit(ctx context.Context, event, requester, role string, names []string, outcome, serial, reason string, extra ...any) {
	s.count(event, role, outcome)
	audit.Log(ctx, s.log, audit.Entry{Event: event, Requester: requester, Role: role, Names: names, Outcome: outcome, Serial: serial, Reason: reason}, extra...)
}

// requestIDs are a per-process random prefix and a counter: unique enough
// to follow one request through the logs, and free per request.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func (r *requestIDs) next() string {
	return r.prefix + strconv.FormatUint(r.n.Add(1), 36)
}

// CountLimited counts a refusal by a rate limit, named by its setting
// (errs.Error.Limit): the REST refusals writeProblem notes, and ACME's,
// whose problem writer tells serve (acme.Deps.Limited).
func (s *Server) CountLimited(limit string) {
	s.metrics.limited.WithLabelValues(limit).Inc()
}

// count feeds refusals seen by the REST API into the metrics (issuance
// and revocation are counted by the CA's hooks, for every door).
func (s *Server) count(event, role, outcome string) {
	if (event == "issue" || event == "renew") && outcome == "refused" {
		s.metrics.refused.WithLabelValues(role, event).Inc()
	}
}
