package api

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"pkid/acme"
	"pkid/ca"
	"pkid/config"
	"pkid/store"
)

// ServeOptions start a whole pkid server from its config.
type ServeOptions struct {
	Config *config.Config
	Clock  ca.Clock
	Log    *slog.Logger
	// Tick is how often timers (server certificate renewal, CRL schedule,
	// root CRL reload) look at the clock; default 1s.
	Tick time.Duration
	// Listeners, if set, are used instead of listening on the configured
	// addresses: sockets a service manager passed (systemd's socket
	// activation), or tests' on port 0.
	HTTPSListener, HTTPListener net.Listener
	// Ready is called once every listener accepts.
	Ready func(*Running)
	// Reload, if set, asks for ReloadRoles once per value received
	// (the command wires SIGHUP to it).
	Reload <-chan struct{}
	// Reloaded, if set, is called after each reload with ReloadRoles'
	// error (nil: the roles were applied), so the command can tell the
	// service manager the reload is over.
	Reloaded func(error)
	// Stopping, if set, is called as serve begins to drain.
	Stopping func()
	// Version, if set, goes into the line that says serve is up, so a log
	// sent with a bug report says what ran.
	Version string
}

// Running exposes the parts of a started server.
type Running struct {
	CA         *ca.Authority
	Store      store.Store
	CRL        *ca.CRLPublisher
	OCSP       *ca.OCSPResponder
	ServerCert *ServerCert
	HTTPSAddr  string
	HTTPAddr   string
	// Health is what /healthz adds to its status: "status" (absent for
	// ok, "degraded" or "halted") and "warnings" ([]string).
	Health func() map[string]any
	Config *config.Config
	Clock  ca.Clock
	Log    *slog.Logger
}

// shutdownGrace bounds how long in-flight requests may finish after a
// signal before connections are cut.
const shutdownGrace = 10 * time.Second

// Serve runs pkid until ctx ends, then drains requests and closes the
// store cleanly.
func Serve(ctx context.Context, o ServeOptions) error {
	cfg := o.Config
	if o.Clock == nil {
		o.Clock = ca.SystemClock{}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Tick == 0 {
		o.Tick = time.Second
	}
	log := o.Log
	root, inter, key, err := LoadCA(cfg)
	if err != nil {
		return err
	}
	defer CloseKey(key)
	// startWarnings hold for as long as serve runs: /healthz repeats them.
	startWarnings := IntermediateKeyWarnings(cfg)
	for _, w := range startWarnings {
		log.Warn("intermediate key", "warning", w)
	}
	for _, w := range PointerWarnings(inter, cfg.PointersURL) {
		log.Warn("intermediate CRL distribution point", "warning", w)
		startWarnings = append(startWarnings, w)
	}
	for _, w := range RoleWarnings(cfg, inter) {
		log.Warn("role", "warning", w) // the config's choice: logged, not a health warning
	}
	for _, w := range IntermediateValidityWarnings(inter, o.Clock.Now()) {
		log.Warn("intermediate", "warning", w) // /healthz says it for as long as it holds
	}
	for _, w := range StoreDiskWarnings(cfg) {
		log.Warn("store", "warning", w) // and /healthz, for as long as it holds
	}
	templates, err := ReadTemplates(cfg)
	if err != nil {
		return err
	}
	st, err := store.OpenBolt(cfg.Resolve(cfg.Storage.Path))
	if err != nil {
		return err
	}
	defer st.Close()
	retired, err := loadRetired(cfg, root, o.Clock.Now(), log)
	if err != nil {
		return err
	}
	for _, rk := range retired {
		defer CloseKey(rk.key)
	}
	authority, err := ca.New(ca.Deps{Root: root, Intermediate: inter, Signer: key, Roles: cfg.Roles, Templates: templates, Store: st, Clock: o.Clock, PointersURL: cfg.PointersURL, Log: log, Retired: retiredCerts(retired)})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// What admin commands did with serve stopped, on the audit log first.
	dir := StoreDir(cfg)
	ReplayOfflineAudit(dir, log)
	// Before anything is served: a store restored from a backup holds the
	// credentials withdrawn since its copy was made as live.
	startWarnings = append(startWarnings, ReplayWithdrawn(ctx, dir, st, log)...)
	// Before any CRL of this run: one signed from a store restored from a
	// backup would leave out the revocations made since.
	issuers := []string{authority.IssuerID()}
	for _, rk := range retired {
		issuers = append(issuers, hex.EncodeToString(rk.cert.SubjectKeyId))
	}
	startWarnings = append(startWarnings, ReapplyCRLCopies(ctx, cfg, authority, issuers, log)...)
	crl := ca.NewCRLPublisher(authority, cfg.CRL.Validity, log)
	crl.Tick = o.Tick
	crl.Published = keepCRLCopy(cfg, log)
	// Always sign a fresh CRL at start: a revocation committed just before
	// a crash may not have reached the stored CRL yet.
	if _, err := crl.Generate(ctx, false); err != nil {
		return fmt.Errorf("initial CRL: %w", err)
	}
	var ips []net.IP
	for _, s := range cfg.TLS.IPAddresses {
		ips = append(ips, net.ParseIP(s))
	}
	sc, err := NewServerCert(ctx, authority, cfg.TLS.DNSNames, ips, cfg.TLS.TTL, o.Clock, log)
	if err != nil {
		return err
	}
	ocspR, err := ca.NewOCSPResponder(ctx, authority)
	if err != nil {
		return err
	}
	var retiredIssuers []RetiredIssuer
	for _, rk := range retired {
		ri, err := startRetired(ctx, rk, authority, cfg, o.Clock, o.Tick, log)
		if err != nil {
			return err
		}
		retiredIssuers = append(retiredIssuers, ri)
	}
	rootCRL := NewRootCRLWatcher(cfg.Resolve(cfg.CA.RootCRL), root, authority.Intermediate(), authority.Halt, o.Clock, log)
	eab, err := NewEAB(cfg, st, o.Clock)
	if err != nil {
		return err
	}

	pending := NewPendingChanges(cfg, authority, log)
	run := &Running{CA: authority, Store: st, CRL: crl, OCSP: ocspR, ServerCert: sc, Config: cfg, Clock: o.Clock, Log: log}
	opts := Options{CA: authority, Store: st, CRL: crl, OCSP: ocspR, EAB: eab, Clock: o.Clock, Log: log, RootCRL: rootCRL.Get, Retired: retiredIssuers, StoreDir: dir,
		Health: func() map[string]any {
			h := map[string]any{}
			w := rootCRL.Warnings()
			if why := authority.Halted(); why != "" {
				h["status"] = "halted" // serving CRLs and OCSP, issuing nothing
				w = []string{why}      // the root CRL's and the intermediate's own warnings no longer matter
			} else {
				w = append(w, IntermediateValidityWarnings(authority.Intermediate(), o.Clock.Now())...)
			}
			if ahead := authority.Steady().Ahead(); ahead != "" {
				w = append(w, ahead)
			}
			w = append(w, startWarnings...)
			w = append(w, pending.Warnings()...)
			w = append(w, StoreDiskWarnings(cfg)...)
			if at, err := st.WriteFailure(); err != nil {
				if h["status"] == nil {
					h["status"] = "degraded" // reads, CRLs and OCSP served; writes failing
				}
				w = append(w, fmt.Sprintf("the store's last commit, at %s, failed: %s; issuing, revoking and ACME fail until a commit succeeds", at.UTC().Format(time.RFC3339), withoutPath(err)))
			}
			if at, err := authority.SignFailure(); err != nil {
				if h["status"] == nil {
					h["status"] = "degraded" // CRLs and OCSP answers already signed still served
				}
				w = append(w, fmt.Sprintf("the intermediate key's last signature, at %s, failed: %s; issuing and new CRLs and OCSP answers fail until it signs again (a key in an HSM: is the token reachable?)", at.UTC().Format(time.RFC3339), err))
			}
			if len(w) > 0 {
				h["warnings"] = w
			}
			return h
		}}
	run.Health = opts.Health
	// srv counts ACME's rate-limit refusals; it is made below, before any
	// request can arrive.
	var srv *Server
	acmeSrv := acme.New(acme.Deps{
		CA: authority, Store: st, ExternalURL: cfg.ExternalURL, Clock: o.Clock, Log: log, AuthzReuse: cfg.ACME.AuthzReuse, EAB: eab,
		FailedValidations: cfg.ACME.FailedValidations.Failures, FailedPer: cfg.ACME.FailedValidations.Per,
		UnfinishedOrders: cfg.ACME.UnfinishedOrders.Orders, UnfinishedPer: cfg.ACME.UnfinishedOrders.Per,
		NewAccounts: cfg.ACME.NewAccounts.Accounts, NewAccountsPer: cfg.ACME.NewAccounts.Per,
		Limited: func(limit string) { srv.CountLimited(limit) },
		Deactivated: func(_ context.Context, id string) {
			NoteWithdrawnOrWarn(dir, Withdrawal{Kind: WithdrawnAccount, ID: id, Status: store.ACMEDeactivated, At: o.Clock.Now()}, log)
		},
		KeyChanged: func(_ context.Context, id, oldTP string, newJWK []byte, newTP string) {
			NoteWithdrawnOrWarn(dir, Withdrawal{Kind: WithdrawnAccountKey, ID: id, Key: oldTP, Successor: newJWK, SuccessorKey: newTP, At: o.Clock.Now()}, log)
		},
		Validator: acme.NewValidator(&acme.Resolver{Hosts: cfg.ACME.Hosts, Server: cfg.ACME.Resolver}, cfg.ACME.HTTP01Port, cfg.ACME.TLSALPN01Port),
	})
	defer acmeSrv.Close()
	opts.ACME = acmeSrv.Handler()
	srv = New(opts)

	httpsL := o.HTTPSListener
	if httpsL == nil {
		if httpsL, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("listen %s: %w", cfg.Listen, err)
		}
	}
	httpL := o.HTTPListener
	if httpL == nil {
		if httpL, err = net.Listen("tcp", cfg.HTTPListen); err != nil {
			httpsL.Close()
			return fmt.Errorf("http_listen %s: %w", cfg.HTTPListen, err)
		}
	}
	adminL, removeAdmin, err := listenAdmin(ctx, cfg)
	if err != nil {
		httpsL.Close()
		httpL.Close()
		return err
	}
	defer removeAdmin()
	run.HTTPSAddr, run.HTTPAddr = httpsL.Addr().String(), httpL.Addr().String()

	httpsSrv := HTTPServer(srv.Handler(), log)
	httpsSrv.TLSConfig = sc.TLSConfig()
	httpSrv := HTTPServer(srv.PublicHandler(), log)
	adminSrv := HTTPServer(srv.AdminHandler(), log)

	var wg sync.WaitGroup
	errc := make(chan error, 3)
	serve := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	serve("https", func() error { return httpsSrv.Serve(tls.NewListener(httpsL, httpsSrv.TLSConfig)) })
	serve("http", func() error { return httpSrv.Serve(httpL) })
	serve("admin", func() error { return adminSrv.Serve(adminL) })
	bg := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	bg(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-o.Reload:
				err := ReloadRoles(cfg, authority, log)
				pending.Reloaded()
				if o.Reloaded != nil {
					o.Reloaded(err)
				}
			}
		}
	})
	bg(func() { crl.Run(ctx) })
	for _, ri := range retiredIssuers {
		bg(func() { ri.CRL.Run(ctx) })
		bg(func() { ri.OCSP.Run(ctx, o.Tick) })
	}
	bg(func() { sc.Run(ctx, o.Tick) })
	bg(func() { ocspR.Run(ctx, o.Tick) })
	bg(func() { acmeSrv.Run(ctx, o.Tick) })
	bg(func() {
		ca.EveryTick(ctx, o.Tick, func(ctx context.Context) { pruneTokens(ctx, st, authority.Steady().Now(), log) })
	})
	bg(func() { ca.EveryTick(ctx, o.Tick, authority.PruneAllowances) })
	bg(func() { ca.EveryTick(ctx, o.Tick, func(context.Context) { pending.Check() }) })
	if r := cfg.Storage.Retention; r != nil {
		bg(func() {
			ca.EveryTick(ctx, o.Tick, func(ctx context.Context) { pruneCertificates(ctx, st, authority.Steady().Now().Add(-*r), log) })
		})
	}
	var warned time.Time
	bg(func() {
		ca.EveryTick(ctx, o.Tick, func(context.Context) {
			if err := rootCRL.Reload(); err != nil && !errors.Is(err, os.ErrNotExist) {
				log.Warn("root CRL reload", "err", err)
			}
			// Repeat the root CRL warning hourly (on the injected clock)
			// until someone re-signs it offline.
			if w := rootCRL.Warnings(); len(w) > 0 && o.Clock.Now().Sub(warned) >= time.Hour {
				log.Warn("root CRL", "warning", w[0])
				warned = o.Clock.Now()
			}
		})
	})
	log.Info("pkid serving", "https", "https://"+run.HTTPSAddr, "http", "http://"+run.HTTPAddr, "issuer", authority.IssuerID(), "retired_issuers", retiredIDs(retiredIssuers), "version", o.Version, "config", cfg.Path)
	if o.Ready != nil {
		o.Ready(run)
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	log.Info("pkid shutting down")
	if o.Stopping != nil {
		o.Stopping()
	}
	sctx, scancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer scancel()
	for _, s := range []*http.Server{httpsSrv, httpSrv, adminSrv} {
		s.Shutdown(sctx)
	}
	cancel()
	wg.Wait()
	return runErr
}

// NewEAB builds the external-account-binding keeper whose sealing key
// derives from the intermediate's passphrase file.
func NewEAB(cfg *config.Config, st store.ACMEStore, clock ca.Clock) (*acme.EAB, error) {
	pw, err := os.ReadFile(cfg.Resolve(cfg.CA.PasswordFile))
	if err != nil {
		return nil, fmt.Errorf("read password file: %w", err)
	}
	return acme.NewEAB(st, bytes.TrimRight(pw, "\r\n"), clock.Now)
}

// LoadCA reads the root and intermediate certificates and decrypts the
// intermediate key named in cfg, or opens it in its PKCS#11 token (the
// root key is never needed here). CloseKey releases a token key.
func LoadCA(cfg *config.Config) (*x509.Certificate, *x509.Certificate, crypto.Signer, error) {
	root, err := ca.LoadCertificate(cfg.Resolve(cfg.CA.RootCert))
	if err != nil {
		return nil, nil, nil, err
	}
	inter, err := ca.LoadCertificate(cfg.Resolve(cfg.CA.IntermediateCert))
	if err != nil {
		return nil, nil, nil, err
	}
	var key crypto.Signer
	if config.IsKeyURI(cfg.CA.IntermediateKey) {
		key, err = ca.OpenTokenKey(context.Background(), cfg.IntermediateKeyURI())
	} else {
		key, err = ca.LoadKey(cfg.Resolve(cfg.CA.IntermediateKey), cfg.Resolve(cfg.CA.PasswordFile))
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("intermediate key: %w", err)
	}
	return root, inter, key, nil
}

// CloseKey ends the session with a key's token, if it is held in one.
func CloseKey(key crypto.Signer) {
	if c, ok := key.(io.Closer); ok {
		c.Close()
	}
}

// ReadTemplates reads the x509util template of every role that names one
// and checks that it parses, so serve and config check refuse a bad one
// alike, naming the role and the file.
func ReadTemplates(cfg *config.Config) (map[string]string, error) {
	templates := map[string]string{}
	for name, r := range cfg.Roles {
		if r.Template == "" {
			continue
		}
		path := cfg.Resolve(r.Template)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("template of role %s: %w", name, err)
		}
		if err := ca.CheckTemplate(name, string(b)); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		templates[name] = string(b)
	}
	return templates, nil
}

// withoutPath describes a store error for /healthz, which anyone may read:
// a file error loses its path (the server's log has the whole error).
func withoutPath(err error) string {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}
