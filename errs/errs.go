// Package errs is pkid's one error type. Inside the CA every failure that a
// client could be told about carries a Kind and a Detail; exactly one place at
// each edge (api/problem.go, acme/problem.go) maps kinds to HTTP problem
// documents, so the mapping can never drift between handlers. The wrapped
// cause is for logs only and never reaches a client.
package errs

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Kind classifies an error by what the client did wrong (or that it was not
// the client's fault), which is all an edge needs to choose a status code.
type Kind int

// The kinds, grouped by when they happen: input parsing, authentication,
// authorization/policy, lookup, state conflicts, load, and our own faults.
const (
	Internal Kind = iota
	Malformed
	BadCSR
	Unauthorized
	Forbidden
	RejectedIdentifier
	NotFound
	Conflict
	AlreadyRevoked
	TooLarge
	RateLimited
	BadRevocationReason
	// Unavailable: the CA cannot serve this now, whatever the request
	// (its intermediate was revoked on the root CRL).
	Unavailable
)

var kindNames = map[Kind]string{
	Internal: "internal", Malformed: "malformed", BadCSR: "badCSR",
	Unauthorized: "unauthorized", Forbidden: "forbidden",
	RejectedIdentifier: "rejectedIdentifier", NotFound: "notFound",
	Conflict: "conflict", AlreadyRevoked: "alreadyRevoked", TooLarge: "tooLarge",
	RateLimited: "rateLimited", BadRevocationReason: "badRevocationReason",
	Unavailable: "unavailable",
}

// String names the kind for logs and problem types.
func (k Kind) String() string { return kindNames[k] }

// Error is a failure with a client-safe Detail and an optional internal Cause.
type Error struct {
	Kind   Kind
	Detail string
	Cause  error
	// RetryAfter, for RateLimited, is when asking again can succeed; the
	// edges send it as Retry-After.
	RetryAfter time.Duration
	// Limit, for RateLimited, is the pkid.yaml setting that refused
	// (acme.new_accounts, roles.<name>.rate_limit…): the edges count
	// refusals by it, so an operator sees which bound clients meet.
	Limit string
}

// Error is for logs: the detail, then the cause when it says more.
func (e *Error) Error() string {
	if e.Cause != nil && e.Cause.Error() != e.Detail {
		return e.Detail + ": " + e.Cause.Error()
	}
	return e.Detail
}

// Unwrap lets errors.Is/As see the cause.
func (e *Error) Unwrap() error { return e.Cause }

// New makes an error of kind k whose detail is shown to the client.
func New(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Detail: fmt.Sprintf(format, args...)}
}

// Wrap makes an error of kind k keeping cause for the logs; detail is what the
// client sees.
func Wrap(k Kind, cause error, format string, args ...any) *Error {
	return &Error{Kind: k, Detail: fmt.Sprintf(format, args...), Cause: cause}
}

// KindOf returns the kind of err (see classify), or Internal.
func KindOf(err error) Kind {
	if e := classify(err); e != nil {
		return e.Kind
	}
	return Internal
}

// DetailOf returns the client-safe detail of err, or a generic text for
// internal errors so causes never leak.
func DetailOf(err error) string {
	if e := classify(err); e != nil && e.Kind != Internal {
		return e.Detail
	}
	return "internal error; the server log has the details"
}

// RetryAfterOf is the wait err asks the client for (RateLimited), or 0.
func RetryAfterOf(err error) time.Duration {
	if e := classify(err); e != nil {
		return e.RetryAfter
	}
	return 0
}

// Limited is a RateLimited refusal by the pkid.yaml setting limit, which
// allows the next request after wait (the edges send it as Retry-After).
// The detail says when in whole seconds: Rounded(wait).
func Limited(limit string, wait time.Duration, format string, args ...any) *Error {
	return &Error{Kind: RateLimited, Detail: fmt.Sprintf(format, args...), RetryAfter: wait, Limit: limit}
}

// Rounded is a wait as a detail says it: whole seconds, rounded up, as
// Retry-After gives it.
func Rounded(wait time.Duration) time.Duration {
	return (wait + time.Second - 1).Truncate(time.Second)
}

// LimitOf is the setting that refused err (see Error.Limit), or "".
func LimitOf(err error) string {
	if e := classify(err); e != nil {
		return e.Limit
	}
	return ""
}

// RetryAfterSeconds renders a wait as a Retry-After value: whole seconds,
// rounded up, at least 1 (RFC 9110 §10.2.3; never the date form, which
// some ACME clients reject).
func RetryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(max(int64((d+time.Second-1)/time.Second), 1), 10)
}

// classify finds what err is to a client. A request body over its
// listener's limit (an *http.MaxBytesError) is TooLarge wherever in the
// chain it is, even under the Malformed of the reader that met it: the
// body was cut, so nothing about its syntax is known. Otherwise it is the
// first *Error in the chain, or nil.
func classify(err error) *Error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return New(TooLarge, "request body is larger than the limit of %d bytes", tooBig.Limit)
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
