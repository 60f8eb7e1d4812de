package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"pkid/errs"
	"pkid/internal/respond"
)

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	body := map[string]any{"status": "ok", "issuer": s.opts.CA.IssuerID()}
	if len(s.opts.Retired) > 0 {
		body["retired_issuers"] = retiredIDs(s.opts.Retired) // their CRLs and OCSP are still served
	}
	if s.opts.Health != nil {
		for k, v := range s.opts.Health() {
			body[k] = v
		}
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) roots(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	w.Write(s.opts.CA.RootPEM())
}

func (s *Server) chain(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	w.Write(s.opts.CA.ChainPEM())
}

func (s *Server) intermediateDER(w http.ResponseWriter, r *http.Request) {
	s.serveCacheable(w, r, "application/pkix-cert", s.opts.CA.Intermediate().Raw, s.opts.CA.Intermediate().NotBefore)
}

// serveCacheable serves a public artefact with ETag and Last-Modified so
// relying parties can poll cheaply. If-Modified-Since gets 304 only for
// the very Last-Modified served, not for any later date as HTTP has it: a
// CRL signed after the clock was stepped back is dated before the one
// signed while it ran ahead, and a client holding that one would be told
// to keep it, without the revocations since.
func (s *Server) serveCacheable(w http.ResponseWriter, r *http.Request, ctype string, body []byte, modified time.Time) {
	if ims, err := http.ParseTime(r.Header.Get("If-Modified-Since")); err == nil && !ims.Equal(modified.Truncate(time.Second)) {
		r.Header.Del("If-Modified-Since")
	}
	sum := sha256.Sum256(body)
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
	w.Header().Set("Cache-Control", "public, max-age=60")
	http.ServeContent(w, r, "", modified, bytes.NewReader(body))
}

func (s *Server) currentCRL(r *http.Request) ([]byte, time.Time, error) {
	if s.opts.CRL == nil {
		return nil, time.Time{}, errs.New(errs.NotFound, "no CRL publisher")
	}
	st, err := s.opts.CRL.Current(r.Context())
	if err != nil {
		return nil, time.Time{}, err
	}
	return st.DER, st.ThisUpdate, nil
}

func (s *Server) crlDER(w http.ResponseWriter, r *http.Request) {
	der, at, err := s.currentCRL(r)
	if err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	s.serveCacheable(w, r, "application/pkix-crl", der, at)
}

func (s *Server) crlPEM(w http.ResponseWriter, r *http.Request) {
	der, at, err := s.currentCRL(r)
	if err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	s.serveCacheable(w, r, "application/x-pem-file", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), at)
}

func (s *Server) crlByIssuer(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["issuer"]
	if id == s.opts.CA.IssuerID() {
		s.crlDER(w, r)
		return
	}
	for _, ri := range s.opts.Retired {
		if ri.ID == id {
			st, err := ri.CRL.Current(r.Context())
			if err != nil {
				writeProblem(w, r, s.log, err)
				return
			}
			s.serveCacheable(w, r, "application/pkix-crl", st.DER, st.ThisUpdate)
			return
		}
	}
	writeProblem(w, r, s.log, errs.New(errs.NotFound, "no CRL for issuer %s (current issuer: %s)", id, s.opts.CA.IssuerID()))
}

func (s *Server) rootCRL(w http.ResponseWriter, r *http.Request) {
	if s.opts.RootCRL == nil {
		writeProblem(w, r, s.log, errs.New(errs.NotFound, "no root CRL loaded"))
		return
	}
	der, at := s.opts.RootCRL()
	if der == nil {
		writeProblem(w, r, s.log, errs.New(errs.NotFound, "no root CRL loaded; run pkid ca root-crl"))
		return
	}
	s.serveCacheable(w, r, "application/pkix-crl", der, at)
}

func (s *Server) crlBundle(w http.ResponseWriter, r *http.Request) {
	der, at, err := s.currentCRL(r)
	if err != nil {
		writeProblem(w, r, s.log, err)
		return
	}
	var buf bytes.Buffer
	if s.opts.RootCRL != nil {
		if root, rat := s.opts.RootCRL(); root != nil {
			pem.Encode(&buf, &pem.Block{Type: "X509 CRL", Bytes: root})
			if rat.After(at) {
				at = rat
			}
		}
	}
	pem.Encode(&buf, &pem.Block{Type: "X509 CRL", Bytes: der})
	// A retired intermediate's leaves are checked against its own CRL.
	for _, ri := range s.opts.Retired {
		st, err := ri.CRL.Current(r.Context())
		if err != nil {
			writeProblem(w, r, s.log, err)
			return
		}
		pem.Encode(&buf, &pem.Block{Type: "X509 CRL", Bytes: st.DER})
		if st.ThisUpdate.After(at) {
			at = st.ThisUpdate
		}
	}
	s.serveCacheable(w, r, "application/x-pem-file", buf.Bytes(), at)
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, r, s.log, errs.New(errs.NotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	respond.JSON(w, http.StatusMethodNotAllowed, "application/problem+json", Problem{Type: problemBase + "methodNotAllowed", Title: "Method not allowed", Status: 405, Detail: r.Method + " is not allowed on " + r.URL.Path})
}
