package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.step.sm/crypto/keyutil"

	"pkid/api"
	"pkid/ca"
	"pkid/config"
)

func configPath(cfgPath, dir string) (string, error) {
	switch {
	case cfgPath != "":
		return cfgPath, nil
	case dir != "":
		return filepath.Join(dir, "pkid.yaml"), nil
	}
	return "", usagef("give --config D/pkid.yaml (or --dir D)")
}

func loadConfig(cfgPath, dir string) (*config.Config, error) {
	p, err := configPath(cfgPath, dir)
	if err != nil {
		return nil, err
	}
	return config.Load(p)
}

func newLogger(cfg *config.Config) *slog.Logger {
	level := slog.LevelInfo
	if cfg.Log.Level == "debug" {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

// healthStatusEvery is how often serve's STATUS (systemctl status) is
// brought in line with /healthz.
const healthStatusEvery = 2 * time.Second

func serveCmd() *cobra.Command {
	var cfgPath, dir string
	c := &cobra.Command{
		Use:   "serve --config D/pkid.yaml",
		Short: "run the CA: HTTPS API and ACME, plain-HTTP CRL/OCSP, admin socket",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cfgPath, dir)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			// The heap of a CA is small and short-lived (requests, certificates
			// in flight): trading memory for less GC work is worth ~10% of
			// issuance throughput (measured with pkid bench). GOGC still wins.
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(400)
			}
			log := newLogger(cfg)
			notify := &serviceNotifier{log: log}
			httpsL, httpL, err := activatedListeners()
			if err != nil {
				return err
			}
			for name, l := range map[string]net.Listener{"https (in place of listen)": httpsL, "http (in place of http_listen)": httpL} {
				if l != nil {
					log.Info("listening on a socket the service manager passed", "socket", name, "address", l.Addr().String())
				}
			}
			// SIGHUP (systemctl reload) re-reads the roles; see api.ReloadRoles.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			reload := make(chan struct{})
			go func() {
				for {
					select {
					case <-hup:
						notify.reloading()
						select {
						case reload <- struct{}{}:
						case <-ctx.Done():
							return
						}
					case <-ctx.Done():
						return
					}
				}
			}()
			return api.Serve(ctx, api.ServeOptions{Config: cfg, Log: log, HTTPSListener: httpsL, HTTPListener: httpL, Reload: reload, Reloaded: notify.reloaded, Ready: func(run *api.Running) {
				notify.ready(run)
				go notify.watchHealth(ctx, run, healthStatusEvery)
			}, Stopping: notify.stopping, Version: version()})
		},
	}
	c.Flags().StringVar(&cfgPath, "config", "", "path of pkid.yaml")
	c.Flags().StringVar(&dir, "dir", "", "CA directory (its pkid.yaml)")
	return c
}

func configCmd() *cobra.Command {
	var cfgPath, dir string
	check := &cobra.Command{
		Use:   "check --config D/pkid.yaml",
		Short: "validate pkid.yaml and the files it names",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cfgPath, dir)
			if err != nil {
				return err
			}
			files := []string{cfg.Resolve(cfg.CA.RootCert), cfg.Resolve(cfg.CA.IntermediateCert), cfg.Resolve(cfg.CA.IntermediateKey), cfg.Resolve(cfg.CA.PasswordFile)}
			if config.IsKeyURI(cfg.CA.IntermediateKey) {
				files[2] = cfg.IntermediateKeyPINFile()
			}
			for _, p := range files {
				if _, err := os.Stat(p); err != nil {
					return fmt.Errorf("%s: %w", cfg.Path, err)
				}
			}
			if _, err := api.ReadTemplates(cfg); err != nil {
				return err
			}
			inter, err := ca.LoadCertificate(cfg.Resolve(cfg.CA.IntermediateCert))
			if err != nil {
				return fmt.Errorf("%s: %w", cfg.Path, err)
			}
			if config.IsKeyURI(cfg.CA.IntermediateKey) {
				// A token key is cheap to reach: check that the token
				// holds it and that it is the intermediate's.
				_, _, key, err := api.LoadCA(cfg)
				if err != nil {
					return fmt.Errorf("%s: %w", cfg.Path, err)
				}
				err = keyutil.VerifyPair(inter.PublicKey, key)
				api.CloseKey(key)
				if err != nil {
					return fmt.Errorf("%s: the key %s is not the intermediate certificate's: %w", cfg.Path, cfg.CA.IntermediateKey, err)
				}
			}
			if why := api.ServerNamesOutside(cfg, inter); why != "" {
				return fmt.Errorf("%s: %s: serve could not issue its own certificate", cfg.Path, why)
			}
			root, err := ca.LoadCertificate(cfg.Resolve(cfg.CA.RootCert))
			if err != nil {
				return fmt.Errorf("%s: %w", cfg.Path, err)
			}
			retired, err := api.CheckRetired(cfg, root, time.Now(), slog.New(slog.NewTextHandler(c.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn})))
			if err != nil {
				return fmt.Errorf("%s: %w", cfg.Path, err)
			}
			if len(retired) > 0 {
				fmt.Fprintf(c.ErrOrStderr(), "retired intermediates still served: %s\n", strings.Join(retired, ", "))
			}
			// What serve would warn of at start, the same words.
			warnings := slices.Concat(api.IntermediateKeyWarnings(cfg), api.IntermediateValidityWarnings(inter, time.Now()), api.RoleWarnings(cfg, inter), api.PointerWarnings(inter, cfg.PointersURL), api.StoreDiskWarnings(cfg))
			for _, w := range warnings {
				fmt.Fprintln(c.ErrOrStderr(), "warning: "+w)
			}
			fmt.Fprintf(c.OutOrStdout(), "%s: ok (%d roles)\n", cfg.Path, len(cfg.Roles))
			return nil
		},
	}
	check.Flags().StringVar(&cfgPath, "config", "", "path of pkid.yaml")
	check.Flags().StringVar(&dir, "dir", "", "CA directory")
	return group("config", "configuration tools", check)
}
