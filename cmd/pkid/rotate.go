package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/spf13/cobra"

	"pkid/api"
	"pkid/ca"
	"pkid/config"
	"pkid/internal/atomicfile"
)

func rotateIntermediateCmd() *cobra.Command {
	var dir, rootPW, keyType, keyURI string
	var validity time.Duration
	c := &cobra.Command{
		Use:   "rotate-intermediate --dir D",
		Short: "replace the intermediate with a new key and certificate from the (offline) root; the old one keeps its CRL and OCSP",
		Long: `Signs a new intermediate with the root key (D/secrets/root.key, as root-crl
reads it), with the current one's name constraints and CRL Distribution Point
and a new key, and writes it where pkid.yaml names the intermediate. The
current intermediate and its key are kept under retired/ beside them: serve
loads them to sign their CRLs and OCSP answers until they expire, and renews
their certificates over mTLS into the new one. Restart serve to use it.

With --key-uri the new key is made inside a PKCS#11 token (required when the
current one is in a token; a way into one when it is a file), and pkid.yaml's
ca.intermediate_key is set to that URI; a retired key in a token stays there,
its URI kept in D/secrets/retired/<issuer>.uri.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if keyType != "" {
				if err := keyTypeFlag(keyType); err != nil {
					return err
				}
			}
			if validity != 0 && validity < ca.MinIntermediateValidity {
				// A negative one made an intermediate already expired,
				// and retired the one that worked.
				return usagef("--validity %s: want at least %s (or leave it out: 5 years)", validity, ca.MinIntermediateValidity)
			}
			cfg, err := loadConfig("", dir)
			if err != nil {
				return err
			}
			if keyURI == "" && config.IsKeyURI(cfg.CA.IntermediateKey) {
				return usagef("the intermediate key is in a PKCS#11 token: name the new key's place there with --key-uri (another object and id)")
			}
			if keyURI != "" {
				if why := config.CheckKeyURI(keyURI); why != "" {
					return usagef("--key-uri %s", why)
				}
			}
			root, err := ca.LoadCertificate(cfg.Resolve(cfg.CA.RootCert))
			if err != nil {
				return err
			}
			rootKey, err := loadRootKey(dir, rootPW)
			if err != nil {
				return err
			}
			cur, err := ca.LoadCertificate(cfg.Resolve(cfg.CA.IntermediateCert))
			if err != nil {
				return err
			}
			r := &rotation{c: c, cfg: cfg, root: root, rootKey: rootKey, cur: cur, keyType: keyType, keyURI: keyURI, validity: validity}
			if keyURI != "" {
				return r.intoToken()
			}
			return r.toFile()
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "CA directory (its pkid.yaml, certs/ and secrets/)")
	c.Flags().StringVar(&rootPW, "root-password-file", "", "the root key's passphrase (default D/secrets/root-password)")
	c.Flags().StringVar(&keyType, "key-type", "", "key type of the new intermediate (default: the current one's)")
	durationFlag(c, &validity, "validity", 0, "validity of the new intermediate (default 5 years, never past the root)")
	c.Flags().StringVar(&keyURI, "key-uri", "", "make the new key in a PKCS#11 token under this URI (RFC 7512; a new object and id)")
	c.MarkFlagRequired("dir")
	return c
}

// rotation is one run of rotate-intermediate.
type rotation struct {
	c               *cobra.Command
	cfg             *config.Config
	root, cur       *x509.Certificate
	rootKey         crypto.Signer
	keyType, keyURI string
	validity        time.Duration
}

// toFile makes the new key here and writes it, encrypted, over the
// current key file, which is kept under retired/ first.
func (r *rotation) toFile() error {
	certPath, keyPath := r.cfg.Resolve(r.cfg.CA.IntermediateCert), r.cfg.Resolve(r.cfg.CA.IntermediateKey)
	curKey, err := os.ReadFile(keyPath)
	if err != nil {
		return err
	}
	pw, err := readPassword(r.cfg.Resolve(r.cfg.CA.PasswordFile))
	if err != nil {
		return err
	}
	next, key, err := ca.NextIntermediate(r.root, r.rootKey, r.cur, r.keyType, r.validity, time.Now())
	if err != nil {
		return err
	}
	keyPEM, err := ca.EncryptKey(key, pw)
	if err != nil {
		return err
	}
	_, retiredKey := api.RetiredPaths(r.cfg, r.oldID())
	if err := r.retire(r.cfg, atomicfile.File{Path: retiredKey, Data: curKey, Mode: 0o600}); err != nil {
		return err
	}
	if err := atomicfile.WriteFiles(
		atomicfile.File{Path: keyPath, Data: keyPEM, Mode: 0o600},
		atomicfile.File{Path: certPath, Data: ca.PEMCert(next.Raw), Mode: 0o644},
	); err != nil {
		return err
	}
	r.report(next, certPath)
	return nil
}

// intoToken makes the new key in a PKCS#11 token and points pkid.yaml at
// it. The current key, a file or a token key, is kept where the config
// after the rotation looks for retired keys.
func (r *rotation) intoToken() (err error) {
	kt, err := ca.SuccessorKeyType(r.cur, r.keyType)
	if err != nil {
		return err
	}
	yaml, err := withIntermediateKey(r.cfg.Path, r.keyURI)
	if err != nil {
		return err
	}
	after := *r.cfg
	after.CA.IntermediateKey = r.keyURI
	key, err := ca.CreateTokenKey(context.Background(), after.IntermediateKeyURI(), kt)
	if err != nil {
		return err
	}
	defer key.Close()
	defer func() {
		if err != nil { // a key for an intermediate never written
			if derr := key.Delete(); derr != nil {
				fmt.Fprintln(r.c.ErrOrStderr(), "warning: "+derr.Error())
			}
		}
	}()
	next, err := ca.NextIntermediateFor(r.root, r.rootKey, r.cur, key, r.validity, time.Now())
	if err != nil {
		return err
	}
	oldKeyFile := ""
	var kept atomicfile.File
	if config.IsKeyURI(r.cfg.CA.IntermediateKey) {
		kept = atomicfile.File{Path: api.RetiredTokenKeyPath(&after, r.oldID()), Data: []byte(r.cfg.IntermediateKeyURI() + "\n"), Mode: 0o600}
	} else {
		oldKeyFile = r.cfg.Resolve(r.cfg.CA.IntermediateKey)
		curKey, err := os.ReadFile(oldKeyFile)
		if err != nil {
			return err
		}
		if err := moveRetiredKeys(r.cfg, &after); err != nil {
			return err
		}
		_, path := api.RetiredPaths(&after, r.oldID())
		kept = atomicfile.File{Path: path, Data: curKey, Mode: 0o600}
	}
	if err := r.retire(&after, kept); err != nil {
		return err
	}
	certPath := r.cfg.Resolve(r.cfg.CA.IntermediateCert)
	if err := atomicfile.WriteFiles(
		atomicfile.File{Path: certPath, Data: ca.PEMCert(next.Raw), Mode: 0o644},
		atomicfile.File{Path: r.cfg.Path, Data: yaml, Mode: 0o644},
	); err != nil {
		return err
	}
	if oldKeyFile != "" {
		// Its copy is under retired/; the config no longer names it.
		os.Remove(oldKeyFile)
	}
	r.report(next, certPath)
	fmt.Fprintf(r.c.ErrOrStderr(), "its key is in the PKCS#11 token: %s (pkid.yaml's ca.intermediate_key now names it)\n", r.keyURI)
	return nil
}

// oldID is the current intermediate's issuer ID.
func (r *rotation) oldID() string { return fmt.Sprintf("%x", r.cur.SubjectKeyId) }

// retire keeps the current intermediate's certificate, and its key (a
// file or a token key's URI), under retired/ as cfg places them, before
// anything replaces it: a failure in between leaves the current
// intermediate in place.
func (r *rotation) retire(cfg *config.Config, key atomicfile.File) error {
	certDir, keyDir := api.RetiredDirs(cfg)
	if err := os.MkdirAll(certDir, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(keyDir, 0o700); err != nil {
		return err
	}
	certPath, _ := api.RetiredPaths(cfg, r.oldID())
	return atomicfile.WriteFiles(key, atomicfile.File{Path: certPath, Data: ca.PEMCert(r.cur.Raw), Mode: 0o644})
}

func (r *rotation) report(next *x509.Certificate, certPath string) {
	retiredCert, _ := api.RetiredPaths(r.cfg, r.oldID())
	fmt.Fprintf(r.c.ErrOrStderr(), "new intermediate %q, issuer %x, valid until %s, in %s\nretired %q (issuer %s) to %s; its CRL and OCSP stay served\nrestart pkid serve to issue from the new one\n",
		next.Subject.CommonName, next.SubjectKeyId, next.NotAfter.UTC().Format(time.RFC3339), certPath, r.cur.Subject.CommonName, r.oldID(), retiredCert)
	fmt.Fprintf(r.c.OutOrStdout(), "%x\n", next.SubjectKeyId)
}

// moveRetiredKeys moves the retired key files of a CA whose key moves
// from a file into a token to where the config after the move looks for
// them (D/secrets/retired), if that is elsewhere.
func moveRetiredKeys(before, after *config.Config) error {
	_, from := api.RetiredDirs(before)
	_, to := api.RetiredDirs(after)
	if from == to {
		return nil
	}
	keys, err := filepath.Glob(filepath.Join(from, "*.key"))
	if err != nil || len(keys) == 0 {
		return err
	}
	if err := os.MkdirAll(to, 0o700); err != nil {
		return err
	}
	for _, k := range keys {
		if err := os.Rename(k, filepath.Join(to, filepath.Base(k))); err != nil {
			return fmt.Errorf("move the retired key %s to %s: %w", k, to, err)
		}
	}
	return nil
}

// keyValue is the value of ca.intermediate_key in pkid.yaml as written:
// quoted either way, or plain up to the end of its flow-mapping entry.
var keyValue = regexp.MustCompile(`(intermediate_key:[ \t]*)('(?:[^']|'')*'|"(?:[^"\\]|\\.)*"|[^,}\n#]+)`)

// withIntermediateKey is pkid.yaml at path with ca.intermediate_key set
// to keyURI and nothing else changed, checked by parsing it back.
func withIntermediateKey(path, keyURI string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if n := len(keyValue.FindAllIndex(raw, -1)); n != 1 {
		return nil, fmt.Errorf("%s: found ca.intermediate_key %d times, not once; set it to '%s' by hand, then run this again", path, n, keyURI)
	}
	m := keyValue.FindSubmatchIndex(raw)
	out := append(append(append([]byte{}, raw[:m[4]]...), config.KeyValue(keyURI)...), raw[m[5]:]...)
	cfg, err := config.Parse(path, out)
	if err != nil {
		return nil, fmt.Errorf("%s with the new key: %w", path, err)
	}
	if cfg.CA.IntermediateKey != keyURI {
		return nil, errors.New(path + ": could not set ca.intermediate_key; set it by hand")
	}
	return out, nil
}
