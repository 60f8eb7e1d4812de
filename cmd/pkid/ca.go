package main

import (
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"pkid/ca"
	"pkid/internal/atomicfile"
	"pkid/pkidclient"
)

func caCmd() *cobra.Command {
	var caURL, fingerprint, out string
	bootstrap := &cobra.Command{
		Use:   "bootstrap --ca-url URL --fingerprint SHA256HEX",
		Short: "fetch the root over untrusted TLS and keep it only if its SHA-256 matches",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			want := strings.ToLower(strings.ReplaceAll(fingerprint, ":", ""))
			if len(want) != 64 {
				return usagef("--fingerprint must be a SHA-256 in hex (64 digits, colons allowed)")
			}
			root, served, err := bootstrapRoot(caURL, want)
			if err != nil {
				return err
			}
			if out == "" {
				out = defaultRootsPath()
			}
			if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
				return err
			}
			if err := atomicfile.WriteFile(out, ca.PEMCert(root.Raw), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(c.ErrOrStderr(), "trusted root %q saved to %s\n", root.Subject.CommonName, out)
			if u, err := url.Parse(caURL); err == nil && served != nil {
				if herr := served.VerifyHostname(u.Hostname()); herr != nil {
					fmt.Fprintf(c.ErrOrStderr(), "warning: %v\n", pkidclient.ExplainTLS(herr))
				}
			}
			return nil
		},
	}
	bootstrap.Flags().StringVar(&caURL, "ca-url", "", "base URL of the CA")
	bootstrap.Flags().StringVar(&fingerprint, "fingerprint", "", "SHA-256 of the root certificate")
	bootstrap.Flags().StringVar(&out, "out", "", "where to save the root (default $PKID_HOME/roots.pem)")
	bootstrap.MarkFlagRequired("ca-url")
	bootstrap.MarkFlagRequired("fingerprint")
	return group("ca", "CA trust and offline root operations", bootstrap, rootCRLCmd(), rotateIntermediateCmd())
}

// bootstrapRoot fetches /v1/ca/roots without verifying TLS (we do not yet
// trust anything) and returns only the certificate whose SHA-256 matches:
// the rest of the bundle is never trusted. The server's chain must then
// verify under that root, or the answer came from someone else. It also
// returns the server's own certificate (nil over plain HTTP), so the
// caller can say if later commands will not accept it for this URL.
func bootstrapRoot(caURL, want string) (*x509.Certificate, *x509.Certificate, error) {
	var served []*x509.Certificate
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, // verified below against the fingerprint
		MinVersion:         tls.VersionTLS12,
		VerifyConnection: func(cs tls.ConnectionState) error {
			served = cs.PeerCertificates
			return nil
		},
	}}}
	resp, err := hc.Get(strings.TrimSuffix(caURL, "/") + "/v1/ca/roots")
	if err != nil {
		return nil, nil, fmt.Errorf("fetch roots: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, nil, fmt.Errorf("fetch roots: HTTP %d", resp.StatusCode)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, err
	}
	root, err := pickRoot(raw, want)
	if err != nil {
		return nil, nil, err
	}
	if len(served) == 0 {
		return root, nil, nil // plain HTTP: no server certificate
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	inter := x509.NewCertPool()
	for _, c := range served[1:] {
		inter.AddCert(c)
	}
	if _, err := served[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter}); err != nil {
		return nil, nil, fmt.Errorf("the server's own certificate does not chain to the fingerprinted root: %w", err)
	}
	return root, served[0], nil
}

// pickRoot returns the one certificate of a PEM bundle (served by a server
// not yet trusted) whose SHA-256 is want, lowercase hex; nothing else in the
// bundle is parsed.
func pickRoot(bundle []byte, want string) (*x509.Certificate, error) {
	for rest := bundle; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, errNoFingerprint
		}
		if sum := sha256.Sum256(b.Bytes); hex.EncodeToString(sum[:]) == want {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

// knownIntermediate says which intermediate of D serial n is (the current
// one, certs/intermediate.crt, or a retired one, certs/retired/*.crt, that
// root signed), or warns that it is none of them: a revocation is never
// undone, and a mistyped serial leaves the intermediate meant unrevoked.
// An offline copy of D may lack later intermediates, so it warns rather
// than refuses.
func knownIntermediate(dir string, root *x509.Certificate, n *big.Int) string {
	paths, _ := filepath.Glob(filepath.Join(dir, "certs", "retired", "*.crt"))
	paths = append([]string{filepath.Join(dir, "certs", "intermediate.crt")}, paths...)
	var known []string
	for _, p := range paths {
		c, err := ca.LoadCertificate(p)
		if err != nil || c.CheckSignatureFrom(root) != nil {
			continue
		}
		if c.SerialNumber.Cmp(n) == 0 {
			return fmt.Sprintf("revoking intermediate %q (serial %s, %s)", c.Subject.CommonName, ca.SerialString(n), p)
		}
		known = append(known, fmt.Sprintf("%s %q", ca.SerialString(c.SerialNumber), c.Subject.CommonName))
	}
	return fmt.Sprintf("warning: serial %s is not an intermediate in %s (it knows %s); it goes on the root CRL all the same, and a revocation is never undone: if the serial was mistyped, the intermediate meant is not revoked", ca.SerialString(n), dir, strings.Join(known, ", "))
}

func rootCRLCmd() *cobra.Command {
	var dir, pwFile, revokeSerial, reason string
	var validity time.Duration
	c := &cobra.Command{
		Use:   "root-crl --dir D",
		Short: "re-sign the root's CRL with the (offline) root key",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			root, err := ca.LoadCertificate(filepath.Join(dir, "certs", "root.crt"))
			if err != nil {
				return err
			}
			key, err := loadRootKey(dir, pwFile)
			if err != nil {
				return err
			}
			crlPath := filepath.Join(dir, "certs", "root.crl")
			var entries []x509.RevocationListEntry
			var prevNumber *big.Int
			if raw, err := os.ReadFile(crlPath); err == nil {
				der := raw
				if b, _ := pem.Decode(raw); b != nil {
					der = b.Bytes
				}
				prev, err := x509.ParseRevocationList(der)
				if err != nil || prev.CheckSignatureFrom(root) != nil {
					return fmt.Errorf("%s is not a CRL of this root; move it away to start afresh", crlPath)
				}
				entries, prevNumber = prev.RevokedCertificateEntries, prev.Number
			}
			if revokeSerial != "" {
				sn, err := ca.NormalizeSerial(revokeSerial)
				if err != nil {
					return usagef("--revoke-intermediate: %v", err)
				}
				if err := ca.CheckReason(reason); err != nil {
					return usagef("--reason: %v", err)
				}
				code := ca.Reasons[reason]
				n, _ := new(big.Int).SetString(sn, 16)
				for _, e := range entries {
					if e.SerialNumber.Cmp(n) == 0 {
						return fmt.Errorf("intermediate %s is already on the root CRL", sn)
					}
				}
				entries = append(entries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: time.Now().UTC(), ReasonCode: code})
				fmt.Fprintln(c.ErrOrStderr(), knownIntermediate(dir, root, n))
			}
			for i := range entries {
				entries[i].Raw = nil
				entries[i].Extensions = nil
			}
			wall := time.Now()
			now, err := rootCRLTime(wall, prevNumber)
			if err != nil {
				return fmt.Errorf("%s: %w", crlPath, err)
			}
			if !now.Equal(wall) {
				fmt.Fprintf(c.ErrOrStderr(), "warning: this machine's clock (%s) is behind the previous root CRL's thisUpdate (%s); the new CRL is dated just after it, so that its number grows and serve loads it: set this clock right\n", wall.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
			}
			der, err := ca.RootCRL(root, key, entries, now, validity)
			if err != nil {
				return err
			}
			if err := atomicfile.WriteFile(crlPath, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o644); err != nil {
				return err
			}
			rl, _ := x509.ParseRevocationList(der)
			fmt.Fprintf(c.ErrOrStderr(), "root CRL %s written: number %s, %d revoked intermediates, next update %s\n", crlPath, rl.Number, len(entries), rl.NextUpdate.Format(time.RFC3339))
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "CA directory holding certs/root.crt and secrets/root.key")
	c.Flags().StringVar(&pwFile, "root-password-file", "", "root key passphrase (default D/secrets/root-password)")
	c.Flags().StringVar(&revokeSerial, "revoke-intermediate", "", "serial of an intermediate to add to the CRL")
	c.Flags().StringVar(&reason, "reason", "keyCompromise", "revocation reason for --revoke-intermediate")
	durationFlag(c, &validity, "validity", 8760*time.Hour, "how long the CRL is valid")
	c.MarkFlagRequired("dir")
	return c
}

// rootCRLTime is the new root CRL's thisUpdate: now, unless the previous
// CRL's number (its thisUpdate in Unix nanoseconds) is not behind now, as
// when the offline machine's clock is slow. serve loads only a root CRL
// whose number grows (and relying parties expect it to), so a revocation
// signed on a slow clock would never be published: the CRL is dated one
// nanosecond after the previous one instead.
func rootCRLTime(now time.Time, prevNumber *big.Int) (time.Time, error) {
	if prevNumber == nil || big.NewInt(now.UnixNano()).Cmp(prevNumber) > 0 {
		return now, nil
	}
	if !prevNumber.IsInt64() {
		return time.Time{}, fmt.Errorf("the previous root CRL's number %s is not a time in nanoseconds; move the file away to start afresh", prevNumber)
	}
	return time.Unix(0, prevNumber.Int64()+1), nil
}

// loadRootKey decrypts D/secrets/root.key, brought back from offline for
// the commands that sign with it, with pwFile (default
// D/secrets/root-password).
func loadRootKey(dir, pwFile string) (crypto.Signer, error) {
	if pwFile == "" {
		pwFile = filepath.Join(dir, "secrets", "root-password")
	}
	path := filepath.Join(dir, "secrets", "root.key")
	key, err := ca.LoadKey(path, pwFile)
	if err != nil {
		return nil, fmt.Errorf("root key (bring it back from offline to %s): %w", path, err)
	}
	return key, nil
}
