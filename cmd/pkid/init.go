package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"pkid/api"
	"pkid/ca"
	"pkid/config"
	"pkid/internal/atomicfile"
	"pkid/policies"
)

type initFlags struct {
	dir, name, keyType, passwordFile, rootPasswordFile string
	intermediateKeyURI                                 string
	dns, ips, permittedDomains, permittedIPs           []string
	force                                              bool
	listen, externalURL, httpListen, pointersURL       string
}

func initCmd() *cobra.Command {
	var f initFlags
	c := &cobra.Command{
		Use:   "init --dir D",
		Short: "create a root and intermediate CA, keys and pkid.yaml in D",
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return runInit(c, &f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.dir, "dir", "", "CA directory to create (required)")
	fl.StringVar(&f.name, "name", "pkid Internal CA", "CA name")
	fl.StringVar(&f.keyType, "key-type", "ec-p256", "ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096 or ed25519")
	fl.StringVar(&f.passwordFile, "password-file", "", "file holding the intermediate key's passphrase (which also seals stored EAB keys; with --intermediate-key-uri it does only that)")
	fl.StringVar(&f.rootPasswordFile, "root-password-file", "", "file holding the root key's passphrase")
	fl.StringVar(&f.intermediateKeyURI, "intermediate-key-uri", "", "make the intermediate key inside a PKCS#11 token (HSM) named by this URI (RFC 7512: module-path, token, object, id, pin-source) instead of a key file")
	fl.StringArrayVar(&f.dns, "dns", nil, "DNS name of the server certificate (repeatable; default localhost)")
	fl.StringArrayVar(&f.ips, "ip", nil, "IP of the server certificate (repeatable; default 127.0.0.1)")
	fl.StringArrayVar(&f.permittedDomains, "permitted-domain", nil, "name constraint on the intermediate (repeatable)")
	fl.StringArrayVar(&f.permittedIPs, "permitted-ip", nil, "IP range constraint on the intermediate, CIDR (repeatable)")
	fl.BoolVar(&f.force, "force", false, "overwrite an existing CA in D")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8443", "HTTPS listen address written to pkid.yaml")
	fl.StringVar(&f.externalURL, "external-url", "", "external HTTPS URL (default https://<listen>)")
	fl.StringVar(&f.httpListen, "http-listen", "127.0.0.1:8080", "plain-HTTP listen address")
	fl.StringVar(&f.pointersURL, "pointers-url", "", "base of CRL/OCSP/caIssuers URLs (default http://<http-listen>)")
	c.MarkFlagRequired("dir")
	return c
}

// keyTypeFlag refuses, as bad usage, a --key-type pkid does not know,
// before a command writes anything.
func keyTypeFlag(kt string) error {
	if !slices.Contains(policies.KnownKeyTypes, kt) {
		return usagef("--key-type %q: want one of %s", kt, strings.Join(policies.KnownKeyTypes, ", "))
	}
	return nil
}

func runInit(c *cobra.Command, f *initFlags) error {
	if (f.passwordFile == "") != (f.rootPasswordFile == "") {
		return usagef("give both --password-file and --root-password-file, or neither")
	}
	if err := keyTypeFlag(f.keyType); err != nil {
		return err
	}
	if err := ca.CheckCAName(f.name); err != nil {
		return usagef("--name: %v", err)
	}
	var constraints []netip.Prefix
	for _, s := range f.permittedIPs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return usagef("--permitted-ip %q: %v", s, err)
		}
		constraints = append(constraints, p)
	}
	if len(f.dns) == 0 && len(f.ips) == 0 {
		f.dns, f.ips = []string{"localhost"}, []string{"127.0.0.1"}
	}
	for _, ip := range f.ips {
		if net.ParseIP(ip) == nil {
			return usagef("--ip %q is not an IP address", ip)
		}
	}
	hier := ca.HierarchyOptions{Name: f.name, KeyType: f.keyType, PermittedDomains: f.permittedDomains, PermittedIPs: constraints}
	if why := hier.OutsideConstraints(f.dns, f.ips); why != "" {
		return usagef("pkid's own TLS certificate (--dns and --ip; localhost and 127.0.0.1 unless given) must keep to the intermediate's name constraints, or no client accepts it: %s; give --dns/--ip names inside them (say --dns ca.internal), or widen --permitted-domain/--permitted-ip", why)
	}
	d := f.dir
	ext := f.externalURL
	if ext == "" {
		ext = "https://" + f.listen
	}
	ptr := f.pointersURL
	if ptr == "" {
		ptr = "http://" + f.httpListen
	}
	// Under name constraints the default role allows what they permit,
	// not the usual internal, localhost and 127.0.0.0/8.
	var roleDomains, roleRanges []string
	for _, d := range f.permittedDomains {
		roleDomains = append(roleDomains, strings.TrimPrefix(d, "."))
	}
	for _, p := range constraints {
		roleRanges = append(roleRanges, p.Masked().String())
	}
	yaml := config.Render(config.Defaults{Listen: f.listen, ExternalURL: ext, HTTPListen: f.httpListen, PointersURL: ptr, DNSNames: f.dns, IPAddresses: f.ips,
		RoleDomains: roleDomains, RoleIPRanges: roleRanges, IntermediateKey: f.intermediateKeyURI})
	// The flags end up in pkid.yaml: check it as serve will, before any
	// file is written, so init never leaves a CA that cannot start.
	cfg, err := config.Parse(filepath.Join(d, "pkid.yaml"), yaml)
	if err != nil {
		return usagef("these flags make an invalid config: %v", err)
	}
	for _, p := range []string{"pkid.yaml", "certs/root.crt", "secrets/intermediate.key"} {
		if _, err := os.Stat(filepath.Join(d, p)); err == nil && !f.force {
			return fmt.Errorf("%s already holds a CA (%s); refusing to overwrite it without --force", d, p)
		}
	}
	if _, err := os.Stat(filepath.Join(d, "db", "pkid.db")); err == nil && f.force {
		// Records of certificates the old CA issued are kept: every
		// certificate that left a CA stays listable and revocable.
		fmt.Fprintln(c.ErrOrStderr(), "note: keeping the existing store "+filepath.Join(d, "db", "pkid.db")+" (records and tokens of the previous CA)")
	}
	for dir, mode := range map[string]os.FileMode{d: 0o755, filepath.Join(d, "certs"): 0o755, filepath.Join(d, "secrets"): 0o700, filepath.Join(d, "db"): 0o700} {
		if err := os.MkdirAll(dir, mode); err != nil {
			return err
		}
	}
	rootPW, interPW, pwPath, pwFiles, err := initPasswords(c, f)
	if err != nil {
		return err
	}
	var keyFiles []atomicfile.File
	var tokenKey *ca.TokenKey
	if f.intermediateKeyURI != "" {
		if tokenKey, err = ca.CreateTokenKey(context.Background(), cfg.IntermediateKeyURI(), f.keyType); err != nil {
			return err
		}
		defer tokenKey.Close()
		hier.IntermediateKey = tokenKey
	}
	// A key made in the token for a CA that is then not written would
	// block the same URI at the next try: take it back out.
	written := false
	defer func() {
		if tokenKey != nil && !written {
			if err := tokenKey.Delete(); err != nil {
				fmt.Fprintln(c.ErrOrStderr(), "warning: "+err.Error())
			}
		}
	}()
	now := time.Now()
	hier.RootCRLURL, hier.Now = api.RootCRLURL(ptr), now
	h, err := ca.CreateHierarchy(hier)
	if err != nil {
		return err
	}
	rootKey, err := ca.EncryptKey(h.RootKey, rootPW)
	if err != nil {
		return err
	}
	if tokenKey == nil {
		interKey, err := ca.EncryptKey(h.IntermediateKey, interPW)
		if err != nil {
			return err
		}
		keyFiles = append(keyFiles, atomicfile.File{Path: filepath.Join(d, "secrets/intermediate.key"), Data: interKey, Mode: 0o600})
	}
	crl, err := ca.RootCRL(h.Root, h.RootKey, nil, now, 365*24*time.Hour)
	if err != nil {
		return err
	}
	if pwPath != "secrets/password" {
		yaml = bytes.Replace(yaml, []byte("password_file: secrets/password"), []byte("password_file: "+pwPath), 1)
	}
	// One set, generated passphrases included: every file is written out
	// before any is renamed, so a failure (a full disk) leaves the
	// directory as it was, the old CA whole under --force.
	if err := atomicfile.WriteFiles(append(append(pwFiles, keyFiles...),
		atomicfile.File{Path: filepath.Join(d, "certs/root.crt"), Data: ca.PEMCert(h.Root.Raw), Mode: 0o644},
		atomicfile.File{Path: filepath.Join(d, "certs/intermediate.crt"), Data: ca.PEMCert(h.Intermediate.Raw), Mode: 0o644},
		atomicfile.File{Path: filepath.Join(d, "certs/root.crl"), Data: pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl}), Mode: 0o644},
		atomicfile.File{Path: filepath.Join(d, "secrets/root.key"), Data: rootKey, Mode: 0o600},
		atomicfile.File{Path: filepath.Join(d, "pkid.yaml"), Data: yaml, Mode: 0o644},
	)...); err != nil {
		return err
	}
	written = true
	// Passphrase and PIN files given stay where they are: say so now if
	// others may read them (serve says so too, for its own). Generated
	// ones were just written 0600 into secrets/.
	var given [][2]string // a key file, and the file that guards it
	if pwFiles == nil {
		given = append(given, [2]string{filepath.Join(d, "secrets/root.key"), f.rootPasswordFile}, [2]string{filepath.Join(d, "secrets/intermediate.key"), pwPath})
	}
	if tokenKey != nil {
		given = append(given, [2]string{"", cfg.IntermediateKeyPINFile()})
	}
	for _, k := range given {
		for _, w := range api.KeyFileWarnings(k[0], k[1]) {
			fmt.Fprintln(c.ErrOrStderr(), "warning: "+w)
		}
	}
	if f.keyType == "ed25519" {
		fmt.Fprintln(c.ErrOrStderr(), "note: Go, OpenSSL and Java accept Ed25519 CA certificates, but NSS (Firefox, and Chromium on Linux) cannot even import such a root: use ec-p256 (the default) for a CA that browsers must trust, pkid's own HTTPS API included")
	}
	fp := sha256.Sum256(h.Root.Raw)
	out := c.OutOrStdout()
	fmt.Fprintf(out, "Created %s in %s (%s keys)\n", f.name, d, f.keyType)
	fmt.Fprintf(out, "Root certificate:  %s\n", filepath.Join(d, "certs/root.crt"))
	fmt.Fprintf(out, "Root fingerprint (SHA-256): %s\n", hex.EncodeToString(fp[:]))
	fmt.Fprintf(out, "Config: %s   Start: pkid serve --config %s\n", filepath.Join(d, "pkid.yaml"), filepath.Join(d, "pkid.yaml"))
	if tokenKey != nil {
		fmt.Fprintf(out, "Intermediate key: in the PKCS#11 token, %s\n", f.intermediateKeyURI)
	}
	fmt.Fprintf(out, "The root key (%s) is needed only for `pkid ca root-crl`: move it offline.\n", filepath.Join(d, "secrets/root.key"))
	return nil
}

// initPasswords reads the passphrase files or, without them, generates
// both for D/secrets (development only, with a warning). It returns the
// passphrases, the path to write as ca.password_file, and the generated
// files, which runInit writes along with the keys.
func initPasswords(c *cobra.Command, f *initFlags) ([]byte, []byte, string, []atomicfile.File, error) {
	if f.passwordFile != "" {
		rp, err := readPassword(f.rootPasswordFile)
		if err != nil {
			return nil, nil, "", nil, err
		}
		ip, err := readPassword(f.passwordFile)
		if err != nil {
			return nil, nil, "", nil, err
		}
		if bytes.Equal(rp, ip) {
			return nil, nil, "", nil, usagef("the root and intermediate passphrases must differ")
		}
		abs, err := filepath.Abs(f.passwordFile)
		if err != nil {
			return nil, nil, "", nil, err
		}
		return rp, ip, abs, nil, nil
	}
	rp, ip := []byte(rand.Text()), []byte(rand.Text())
	fmt.Fprintln(c.ErrOrStderr(), "warning: generated passphrases into "+filepath.Join(f.dir, "secrets")+" next to the keys; this is for development only (use --password-file and --root-password-file in production)")
	// Written with the keys they open, as one set: new passphrases beside
	// the old keys (a failed --force) would lock the old CA out.
	return rp, ip, "secrets/password", []atomicfile.File{
		{Path: filepath.Join(f.dir, "secrets/root-password"), Data: rp, Mode: 0o600},
		{Path: filepath.Join(f.dir, "secrets/password"), Data: ip, Mode: 0o600},
	}, nil
}

func readPassword(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	b = bytes.TrimRight(b, "\r\n")
	if len(b) < 8 {
		return nil, fmt.Errorf("passphrase in %s is shorter than 8 characters", path)
	}
	return b, nil
}
