package api

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/crypto/ocsp"
)

// ocspMaxAge is how long relying parties and caches may keep a GET answer;
// well under the response's own one-hour validity.
const ocspMaxAge = "public, max-age=300"

func (s *Server) ocspGet(w http.ResponseWriter, r *http.Request) {
	// The base64 request may contain '/' (hence no path cleaning) and
	// URL-escaped characters.
	raw := strings.TrimPrefix(r.URL.EscapedPath(), "/ocsp/")
	unescaped, err := url.PathUnescape(raw)
	if err != nil {
		s.writeOCSP(w, ocsp.MalformedRequestErrorResponse, false)
		return
	}
	der, err := base64.StdEncoding.DecodeString(unescaped)
	if err != nil {
		der, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(unescaped, "="))
	}
	if err != nil {
		s.writeOCSP(w, ocsp.MalformedRequestErrorResponse, false)
		return
	}
	s.writeOCSP(w, s.opts.OCSP.Respond(r.Context(), der), true)
}

func (s *Server) ocspPost(w http.ResponseWriter, r *http.Request) {
	der, err := io.ReadAll(r.Body)
	if err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	s.writeOCSP(w, s.opts.OCSP.Respond(r.Context(), der), false)
}

func (s *Server) writeOCSP(w http.ResponseWriter, der []byte, cacheable bool) {
	w.Header().Set("Content-Type", "application/ocsp-response")
	if cacheable {
		sum := sha256.Sum256(der)
		w.Header().Set("Cache-Control", ocspMaxAge)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
	} else {
		w.Header().Set("Cache-Control", "no-store")
	}
	w.Write(der)
}
