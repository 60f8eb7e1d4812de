package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"pkid/api"
	"pkid/ca"
	"pkid/internal/atomicfile"
)

func rotateIntermediateCmd() *cobra.Command {
	var dir, rootPW, keyType string
	var validity time.Duration
	c := &cobra.Command{
		Use:   "rotate-intermediate --dir D",
		Short: "replace the intermediate with a new key and certificate from the (offline) root; the old one keeps its CRL and OCSP",
		Long: `Signs a new intermediate with the root key (D/secrets/root.key, as root-crl
reads it), with the current one's name constraints and CRL Distribution Point
and a new key, and writes it where pkid.yaml names the intermediate. The
current intermediate and its key are kept under retired/ beside them: serve
loads them to sign their CRLs and OCSP answers until they expire, and renews
their certificates over mTLS into the new one. Restart serve to use it.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := loadConfig("", dir)
			if err != nil {
				return err
			}
			if rootPW == "" {
				rootPW = filepath.Join(dir, "secrets", "root-password")
			}
			root, err := ca.LoadCertificate(cfg.Resolve(cfg.CA.RootCert))
			if err != nil {
				return err
			}
			rootKey, err := ca.LoadKey(filepath.Join(dir, "secrets", "root.key"), rootPW)
			if err != nil {
				return fmt.Errorf("root key (bring it back from offline to %s): %w", filepath.Join(dir, "secrets", "root.key"), err)
			}
			certPath, keyPath := cfg.Resolve(cfg.CA.IntermediateCert), cfg.Resolve(cfg.CA.IntermediateKey)
			cur, err := ca.LoadCertificate(certPath)
			if err != nil {
				return err
			}
			curKey, err := os.ReadFile(keyPath)
			if err != nil {
				return err
			}
			pw, err := readPassword(cfg.Resolve(cfg.CA.PasswordFile))
			if err != nil {
				return err
			}
			next, key, err := ca.NextIntermediate(root, rootKey, cur, keyType, validity, time.Now())
			if err != nil {
				return err
			}
			keyPEM, err := ca.EncryptKey(key, pw)
			if err != nil {
				return err
			}
			oldID := fmt.Sprintf("%x", cur.SubjectKeyId)
			retiredCert, retiredKey := api.RetiredPaths(cfg, oldID)
			if err := os.MkdirAll(filepath.Dir(retiredCert), 0o755); err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(retiredKey), 0o700); err != nil {
				return err
			}
			// The old pair is kept before the new one replaces it: a
			// failure in between leaves the current intermediate in place.
			if err := atomicfile.WriteFiles(
				atomicfile.File{Path: retiredKey, Data: curKey, Mode: 0o600},
				atomicfile.File{Path: retiredCert, Data: ca.PEMCert(cur.Raw), Mode: 0o644},
			); err != nil {
				return err
			}
			if err := atomicfile.WriteFiles(
				atomicfile.File{Path: keyPath, Data: keyPEM, Mode: 0o600},
				atomicfile.File{Path: certPath, Data: ca.PEMCert(next.Raw), Mode: 0o644},
			); err != nil {
				return err
			}
			fmt.Fprintf(c.ErrOrStderr(), "new intermediate %q, issuer %x, valid until %s, in %s\nretired %q (issuer %s) to %s; its CRL and OCSP stay served\nrestart pkid serve to issue from the new one\n",
				next.Subject.CommonName, next.SubjectKeyId, next.NotAfter.UTC().Format(time.RFC3339), certPath, cur.Subject.CommonName, oldID, retiredCert)
			fmt.Fprintf(c.OutOrStdout(), "%x\n", next.SubjectKeyId)
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "CA directory (its pkid.yaml, certs/ and secrets/)")
	c.Flags().StringVar(&rootPW, "root-password-file", "", "the root key's passphrase (default D/secrets/root-password)")
	c.Flags().StringVar(&keyType, "key-type", "", "key type of the new intermediate (default: the current one's)")
	c.Flags().DurationVar(&validity, "validity", 0, "validity of the new intermediate (default 5 years, never past the root)")
	c.MarkFlagRequired("dir")
	return c
}
