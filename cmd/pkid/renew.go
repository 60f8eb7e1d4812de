package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"pkid/api"
	"pkid/ca"
	"pkid/pkidclient"
)

type renewFlags struct {
	clientFlags
	certFile, keyFile, execCmd, pidFile, signal string
	execTimeout                                 time.Duration
	daemon, keepKey                             bool
}

func certRenewCmd() *cobra.Command {
	var f renewFlags
	c := &cobra.Command{
		Use:   "renew --ca-url URL --cert F --key F [--daemon]",
		Short: "renew a certificate over mTLS with itself; --daemon keeps it fresh",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			log := slog.New(slog.NewTextHandler(c.ErrOrStderr(), nil))
			if f.execTimeout <= 0 {
				return usagef("--exec-timeout %s: want a positive duration", f.execTimeout)
			}
			if !f.daemon {
				leaf, err := renewOnce(&f)
				if err != nil {
					return err
				}
				log.Info("renewed", "serial", ca.SerialString(leaf.SerialNumber), "not_after", leaf.NotAfter)
				noteNotYetValid(c.ErrOrStderr(), leaf)
				return afterRenew(&f, log)
			}
			return renewDaemon(&f, log)
		},
	}
	f.register(c, false)
	c.Flags().StringVar(&f.certFile, "cert", "", "certificate file (leaf first), replaced on renewal")
	c.Flags().StringVar(&f.keyFile, "key", "", "key file, replaced on renewal (0600)")
	c.Flags().BoolVar(&f.daemon, "daemon", false, "keep renewing at about two thirds of each lifetime")
	c.Flags().BoolVar(&f.keepKey, "keep-key", false, "renew the same key instead of generating a new one")
	c.Flags().StringVar(&f.execCmd, "exec", "", "command to run (sh -c) after each renewal")
	durationFlag(c, &f.execTimeout, "exec-timeout", 5*time.Minute, "kill --exec if it runs longer (so a hung reload cannot stop the next renewal)")
	c.Flags().StringVar(&f.pidFile, "pid-file", "", "send --signal to the process in this file after each renewal")
	c.Flags().StringVar(&f.signal, "signal", "HUP", "signal for --pid-file")
	c.MarkFlagRequired("cert")
	c.MarkFlagRequired("key")
	return c
}

// loadPair reads the pair, retrying briefly: a writer renames the
// certificate and key into place back to back, so a read between the two
// renames sees a mismatch that is gone a moment later.
func loadPair(certFile, keyFile string) (tls.Certificate, error) {
	var err error
	for range 10 {
		var pair tls.Certificate
		if pair, err = pkidclient.LoadKeyPair(certFile, keyFile); err == nil {
			return pair, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return tls.Certificate{}, fmt.Errorf("load %s and %s: %w", certFile, keyFile, err)
}

func renewOnce(f *renewFlags) (*x509.Certificate, error) {
	pair, err := loadPair(f.certFile, f.keyFile)
	if err != nil {
		return nil, err
	}
	cl, err := newAPIClient(f.caURL, f.root, []tls.Certificate{pair})
	if err != nil {
		return nil, err
	}
	body := map[string]string{}
	var keyPEM []byte
	key := pair.PrivateKey.(crypto.Signer)
	if !f.keepKey {
		if key, err = pkidclient.NewKeyLike(key); err != nil {
			return nil, err
		}
		leaf := pair.Leaf
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: leaf.Subject, DNSNames: leaf.DNSNames, IPAddresses: leaf.IPAddresses, URIs: leaf.URIs, EmailAddresses: leaf.EmailAddresses}, key)
		if err != nil {
			return nil, err
		}
		body["csr"] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
		old, err := os.ReadFile(f.keyFile)
		if err != nil {
			return nil, err
		}
		if keyPEM, err = pkidclient.MarshalKeyLike(key, old); err != nil {
			return nil, err
		}
	}
	var resp api.IssueResponse
	if err := cl.do("POST", "/v1/renew", "", body, &resp); err != nil {
		return nil, err
	}
	leaf, err := issuedLeaf(&resp, key.Public())
	if err != nil {
		return nil, fmt.Errorf("renew: %w; %s and %s are unchanged", err, f.certFile, f.keyFile)
	}
	if err := writePair(f.certFile, leafAndChain(&resp), f.keyFile, keyPEM); err != nil {
		return nil, err
	}
	return leaf, nil
}

// execWaitDelay is how long --exec's output is read after its shell has
// exited: a service it started in the background may hold it for good.
const execWaitDelay = 2 * time.Second

func afterRenew(f *renewFlags, log *slog.Logger) error {
	if f.execCmd != "" {
		// The daemon runs the hook between renewals: a reload that hangs
		// must not stop the next one, so it is killed after --exec-timeout;
		// and a child it leaves running with its output (`svc &`) is not
		// waited for past execWaitDelay.
		ctx, cancel := context.WithTimeout(context.Background(), f.execTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "sh", "-c", f.execCmd)
		cmd.WaitDelay = execWaitDelay
		out, err := cmd.CombinedOutput()
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("--exec %q: still running after --exec-timeout %s, killed: %s", f.execCmd, f.execTimeout, strings.TrimSpace(string(out)))
		case errors.Is(err, exec.ErrWaitDelay):
			log.Warn("--exec exited, leaving a process with its output open; not waiting for it", "command", f.execCmd)
		case err != nil:
			return fmt.Errorf("--exec %q: %v: %s", f.execCmd, err, strings.TrimSpace(string(out)))
		}
		log.Info("ran --exec", "command", f.execCmd)
	}
	if f.pidFile != "" {
		raw, err := os.ReadFile(f.pidFile)
		if err != nil {
			return err
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil {
			return fmt.Errorf("--pid-file %s: %v", f.pidFile, err)
		}
		if err := signalPid(pid, strings.TrimPrefix(strings.ToUpper(f.signal), "SIG")); err != nil {
			return err
		}
		log.Info("signalled", "pid", pid, "signal", f.signal)
	}
	return nil
}

func renewDaemon(f *renewFlags, log *slog.Logger) error {
	// Under systemd (Type=notify, contrib/systemd/pkid-renew@.service),
	// `systemctl status` shows the certificate and the next renewal.
	notify := &serviceNotifier{log: log}
	backoff := time.Second
	for {
		pair, err := loadPair(f.certFile, f.keyFile)
		if err != nil {
			return err
		}
		at := pkidclient.RenewAt(time.Now(), pair.Leaf)
		log.Info("next renewal", "at", at.Format(time.RFC3339Nano), "not_after", pair.Leaf.NotAfter)
		held := fmt.Sprintf("certificate %s valid until %s", ca.SerialString(pair.Leaf.SerialNumber), pair.Leaf.NotAfter.UTC().Format(time.RFC3339))
		notify.doing(held + "; next renewal at " + at.UTC().Format(time.RFC3339))
		pkidclient.SleepUntil(context.Background(), at) // ends only at at
		if pkidclient.NotYetValid(time.Now(), pair.Leaf) > 0 {
			cl, err := newAPIClient(f.caURL, f.root, nil)
			if err != nil {
				return err
			}
			ok, why := pkidclient.CAClockAgrees(context.Background(), cl.http, f.caURL)
			cl.http.CloseIdleConnections()
			if !ok {
				log.Warn("the certificate is not valid yet; renewing once the CA's clock agrees with this one", "not_before", pair.Leaf.NotBefore, "why", why)
				pkidclient.SleepUntil(context.Background(), time.Now().Add(pkidclient.ClockRecheck))
				continue
			}
		}
		for {
			leaf, err := renewOnce(f)
			if err == nil {
				log.Info("renewed", "serial", ca.SerialString(leaf.SerialNumber), "not_after", leaf.NotAfter)
				if err := afterRenew(f, log); err != nil {
					log.Error("after renewal", "err", err)
				}
				backoff = time.Second
				break
			}
			if pkidclient.IsPermanent(err) {
				// Revoked, expired, unknown, or a role that no longer
				// allows it: retrying until notAfter would only hide it.
				return fmt.Errorf("renewal refused, so the daemon stops (a new certificate needs a token): %w", err)
			}
			if time.Now().After(pair.Leaf.NotAfter) {
				return fmt.Errorf("certificate expired before it could be renewed: %w", err)
			}
			backoff = pkidclient.RetryDelay(err, backoff, time.Until(pair.Leaf.NotAfter))
			log.Error("renewal failed; retrying", "err", err, "in", backoff)
			notify.doing(fmt.Sprintf("%s; renewal failed, retrying at %s: %v", held, time.Now().Add(backoff).UTC().Format(time.RFC3339), err))
			pkidclient.SleepUntil(context.Background(), time.Now().Add(backoff))
			backoff = min(backoff*2, 5*time.Minute, max(time.Until(pair.Leaf.NotAfter)/4, time.Second))
		}
	}
}
