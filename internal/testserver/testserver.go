// Package testserver starts a real pkid (api.Serve) in-process on loopback
// listeners for tests, with an optional fake clock, and a client that trusts
// the CA's root and verifies TLS on that same clock.
package testserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"pkid/api"
	"pkid/ca"
	"pkid/config"
	"pkid/internal/testutil"
)

// Server is a running pkid.
type Server struct {
	Run    *api.Running
	Clock  *ca.FakeClock // nil: the system clock
	Client *http.Client
	Base   string // https://127.0.0.1:port
	HTTP   string // http://127.0.0.1:port
	// Reload asks the server to reload its roles, as SIGHUP does.
	Reload chan<- struct{}
	cancel context.CancelFunc
	done   chan error
}

// Start serves cfg on ports. Timers look at the clock every 50 ms; set
// PKID_TEST_LOG=1 to see the server's log.
func Start(cfg *config.Config, ports *testutil.Ports, clock *ca.FakeClock) (*Server, error) {
	ready := make(chan *api.Running, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logOut := io.Discard
	if os.Getenv("PKID_TEST_LOG") != "" {
		logOut = os.Stderr
	}
	reload := make(chan struct{})
	opts := api.ServeOptions{Config: cfg, Reload: reload, Log: slog.New(slog.NewJSONHandler(logOut, nil)), Tick: 50 * time.Millisecond,
		HTTPSListener: ports.HTTPS, HTTPListener: ports.HTTP, Ready: func(r *api.Running) { ready <- r }}
	now := time.Now
	if clock != nil {
		opts.Clock, now = clock, clock.Now
	}
	go func() { done <- api.Serve(ctx, opts) }()
	var run *api.Running
	select {
	case run = <-ready:
	case err := <-done:
		cancel()
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(run.CA.Root())
	return &Server{
		Run: run, Clock: clock, Base: "https://" + run.HTTPSAddr, HTTP: "http://" + run.HTTPAddr, Reload: reload,
		Client: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, Time: now}, MaxIdleConnsPerHost: 64}},
		cancel: cancel, done: done,
	}, nil
}

// Stop shuts the server down and returns what Serve returned.
func (s *Server) Stop() error {
	s.Client.CloseIdleConnections()
	s.cancel()
	return <-s.done
}
