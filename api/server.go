// Package api is pkid's REST API over HTTPS, its plain-HTTP listener for
// CA certificates and revocation data, and the local admin socket. It
// speaks HTTP and renders problems; every decision about certificates is
// made in package ca.
package api

import (
	"crypto/rand"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"pkid/acme"
	"pkid/ca"
	"pkid/store"
)

// Options configure a Server.
type Options struct {
	CA    *ca.Authority
	Store store.Store
	CRL   *ca.CRLPublisher
	OCSP  *ca.OCSPResponder
	EAB   *acme.EAB
	Clock ca.Clock
	Log   *slog.Logger
	// MaxBody bounds every request body (default 64 KiB).
	MaxBody int64
	// RootCRL returns the root's current CRL (DER) and when it was loaded.
	RootCRL func() ([]byte, time.Time)
	// Health adds details (warnings) to /healthz.
	Health func() map[string]any
	// ACME, if set, serves /acme/.
	ACME http.Handler
	// StoreDir, if set, is the directory holding the store's file, whose
	// filesystem's free space /metrics reports.
	StoreDir string
	// Retired are the intermediates a rotation retired, while any of
	// their certificates may still be checked: their CRLs are served at
	// /crl/{issuer} and in /crl/bundle.pem, and OCSP answers for them.
	Retired []RetiredIssuer
}

// RetiredIssuer is a retired intermediate's CRL publisher and OCSP
// responder (each signing with its key).
type RetiredIssuer struct {
	ID   string
	CRL  *ca.CRLPublisher
	OCSP *ca.OCSPResponder
}

// Server holds the handlers.
type Server struct {
	opts    Options
	log     *slog.Logger
	oidc    oidcVerifiers
	reqID   requestIDs
	metrics *metrics
	// clockDate: the Date header is the injected clock's, which is not
	// the system clock net/http would send (tests).
	clockDate bool
}

// New validates opts.
func New(opts Options) *Server {
	if opts.MaxBody == 0 {
		opts.MaxBody = 64 << 10
	}
	if opts.Clock == nil {
		opts.Clock = ca.SystemClock{}
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	var writeFailing func() bool
	if opts.Store != nil {
		writeFailing = func() bool { _, err := opts.Store.WriteFailure(); return err != nil }
	}
	var free func() (uint64, error)
	if opts.StoreDir != "" {
		free = func() (uint64, error) { return diskFree(opts.StoreDir) }
	}
	_, system := opts.Clock.(ca.SystemClock)
	srv := &Server{opts: opts, log: opts.Log, metrics: newMetrics(writeFailing, free), clockDate: !system}
	if opts.CA != nil {
		opts.CA.OnIssue(func(rec *store.CertRecord) { srv.metrics.issued.WithLabelValues(rec.Role, rec.Via).Inc() })
		opts.CA.OnRevoke(func(rec *store.CertRecord) { srv.metrics.revoked.WithLabelValues(rec.Reason).Inc() })
	}
	srv.reqID.prefix = rand.Text()[:8] + "-"
	return srv
}

// Handler is the HTTPS router: everything.
func (s *Server) Handler() http.Handler {
	r := mux.NewRouter()
	r.SkipClean(true)
	r.Use(recordRoute)
	// gorilla/mux tries routes in order, one regexp each, and no two of
	// these overlap: the hot paths (issuance, ACME) go first.
	r.HandleFunc("/v1/sign/{role}", s.sign).Methods(http.MethodPost)
	r.HandleFunc("/v1/issue/{role}", s.issue).Methods(http.MethodPost)
	r.HandleFunc("/v1/renew", s.renew).Methods(http.MethodPost)
	if s.opts.ACME != nil {
		r.PathPrefix("/acme/").Handler(s.opts.ACME)
	}
	s.publicRoutes(r)
	r.HandleFunc("/healthz", s.health).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/metrics", s.metrics.handler()).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/v1/ca/roots", s.roots).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/v1/ca/chain", s.chain).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/v1/certs/{serial}", s.getCert).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/v1/certs", s.listCerts).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/v1/revoke", s.revoke).Methods(http.MethodPost)
	r.HandleFunc("/v1/revoke/self", s.revokeSelf).Methods(http.MethodPost)
	r.HandleFunc("/v1/tokens", s.createToken).Methods(http.MethodPost)
	r.HandleFunc("/v1/tokens", s.listTokens).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/v1/tokens/{id}", s.deleteToken).Methods(http.MethodDelete)
	r.HandleFunc("/v1/roles", s.roles).Methods(http.MethodGet, http.MethodHead)
	r.NotFoundHandler = http.HandlerFunc(s.notFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(s.methodNotAllowed)
	return s.middleware(r, s.opts.MaxBody)
}

// PublicHandler is the plain-HTTP router: only CA certificates and
// revocation data, which relying parties fetch without trusting our TLS.
func (s *Server) PublicHandler() http.Handler {
	r := mux.NewRouter()
	r.SkipClean(true)
	r.Use(recordRoute)
	s.publicRoutes(r)
	r.NotFoundHandler = http.HandlerFunc(s.notFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(s.methodNotAllowed)
	return s.middleware(r, s.opts.MaxBody)
}

func (s *Server) publicRoutes(r *mux.Router) {
	r.HandleFunc("/v1/ca/intermediate.der", s.intermediateDER).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/crl", s.crlDER).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/crl.pem", s.crlPEM).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/crl/bundle.pem", s.crlBundle).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/crl/{issuer:[0-9a-f]+}", s.crlByIssuer).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(RootCRLPath, s.rootCRL).Methods(http.MethodGet, http.MethodHead)
	if s.opts.OCSP != nil {
		r.HandleFunc("/ocsp", s.ocspPost).Methods(http.MethodPost)
		r.HandleFunc("/ocsp/{req:.+}", s.ocspGet).Methods(http.MethodGet, http.MethodHead)
	}
}

// HTTPServer wraps h with the timeouts and header limit every listener
// gets, so a slow or hostile client cannot hold connections open.
func HTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          errorLog(log),
	}
}
