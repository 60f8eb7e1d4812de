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

	"pkid/ca"
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
		s.writeOCSP(w, ca.OCSPAnswer{DER: ocsp.MalformedRequestErrorResponse})
		return
	}
	der, err := base64.StdEncoding.DecodeString(unescaped)
	if err != nil {
		der, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(unescaped, "="))
	}
	if err != nil {
		s.writeOCSP(w, ca.OCSPAnswer{DER: ocsp.MalformedRequestErrorResponse})
		return
	}
	s.writeOCSP(w, s.ocsp(r.Context(), der))
}

// ocsp answers from the current intermediate's responder, or, for a
// request naming a retired intermediate (which the current one answers
// "unauthorized"), from that one's.
func (s *Server) ocsp(ctx context.Context, der []byte) ca.OCSPAnswer {
	ans := s.opts.OCSP.Answer(ctx, der)
	if bytes.Equal(ans.DER, ocsp.UnauthorizedErrorResponse) {
		for _, ri := range s.opts.Retired {
			if a := ri.OCSP.Answer(ctx, der); !bytes.Equal(a.DER, ocsp.UnauthorizedErrorResponse) {
				return a
			}
		}
	}
	return ans
}

func (s *Server) ocspPost(w http.ResponseWriter, r *http.Request) {
	der, err := io.ReadAll(r.Body)
	if err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	s.writeOCSP(w, ca.OCSPAnswer{DER: s.ocsp(r.Context(), der).DER}) // POST answers are not cached
}

// writeOCSP sends an answer that HTTP caches may keep until its
// nextUpdate at the latest, with RFC 5019 §6.2's headers (Last-Modified
// thisUpdate, Expires nextUpdate; max-age, which caches obey first, at
// most ocspMaxAge); a zero nextUpdate (a POST, an error status) is not to
// be cached.
func (s *Server) writeOCSP(w http.ResponseWriter, a ca.OCSPAnswer) {
	w.Header().Set("Content-Type", "application/ocsp-response")
	age := min(ocspMaxAge, a.NextUpdate.Sub(s.opts.Clock.Now())) / time.Second
	if age > 0 {
		sum := sha256.Sum256(a.DER)
		w.Header().Set("Cache-Control", "max-age="+strconv.Itoa(int(age))+", public, no-transform, must-revalidate")
		w.Header().Set("Last-Modified", a.ThisUpdate.UTC().Format(http.TimeFormat))
		w.Header().Set("Expires", a.NextUpdate.UTC().Format(http.TimeFormat))
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
	} else {
		w.Header().Set("Cache-Control", "no-store")
	}
	w.Write(a.DER)
}
