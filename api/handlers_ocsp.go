package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"
)

// ocspMaxAge is how long relying parties and caches may keep a GET answer:
// well under a response's own validity of up to an hour, and never past
// its nextUpdate (RFC 5019 §6.2), which is a short-lived certificate's
// notAfter.
const ocspMaxAge = 300 * time.Second

func (s *Server) ocspGet(w http.ResponseWriter, r *http.Request) {
	// The base64 request may contain '/' (hence no path cleaning) and
	// URL-escaped characters.
	raw := strings.TrimPrefix(r.URL.EscapedPath(), "/ocsp/")
	unescaped, err := url.PathUnescape(raw)
	if err != nil {
		s.writeOCSP(w, ocsp.MalformedRequestErrorResponse, time.Time{}, time.Time{})
		return
	}
	der, err := base64.StdEncoding.DecodeString(unescaped)
	if err != nil {
		der, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(unescaped, "="))
	}
	if err != nil {
		s.writeOCSP(w, ocsp.MalformedRequestErrorResponse, time.Time{}, time.Time{})
		return
	}
	resp, this, next := s.ocsp(r.Context(), der)
	s.writeOCSP(w, resp, this, next)
}

// ocsp answers from the current intermediate's responder, or, for a
// request naming a retired intermediate (which the current one answers
// "unauthorized"), from that one's.
func (s *Server) ocsp(ctx context.Context, der []byte) ([]byte, time.Time, time.Time) {
	resp, this, next := s.opts.OCSP.RespondUntil(ctx, der)
	if bytes.Equal(resp, ocsp.UnauthorizedErrorResponse) {
		for _, ri := range s.opts.Retired {
			if r, t, n := ri.OCSP.RespondUntil(ctx, der); !bytes.Equal(r, ocsp.UnauthorizedErrorResponse) {
				return r, t, n
			}
		}
	}
	return resp, this, next
}

func (s *Server) ocspPost(w http.ResponseWriter, r *http.Request) {
	der, err := io.ReadAll(r.Body)
	if err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	resp, _, _ := s.ocsp(r.Context(), der)
	s.writeOCSP(w, resp, time.Time{}, time.Time{}) // POST answers are not cached
}

// writeOCSP sends an answer that HTTP caches may keep until next at the
// latest, with RFC 5019 §6.2's headers (Last-Modified thisUpdate, Expires
// nextUpdate; max-age, which caches obey first, at most ocspMaxAge); a
// zero next (a POST, an error status) is not to be cached.
func (s *Server) writeOCSP(w http.ResponseWriter, der []byte, this, next time.Time) {
	w.Header().Set("Content-Type", "application/ocsp-response")
	age := min(ocspMaxAge, next.Sub(s.opts.Clock.Now())) / time.Second
	if age > 0 {
		sum := sha256.Sum256(der)
		w.Header().Set("Cache-Control", "max-age="+strconv.Itoa(int(age))+", public, no-transform, must-revalidate")
		w.Header().Set("Last-Modified", this.UTC().Format(http.TimeFormat))
		w.Header().Set("Expires", next.UTC().Format(http.TimeFormat))
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
	} else {
		w.Header().Set("Cache-Control", "no-store")
	}
	w.Write(der)
}
