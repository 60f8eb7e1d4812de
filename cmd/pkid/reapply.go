package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"pkid/api"
	"pkid/ca"
	"pkid/config"
)

// reapplyCRLs is `pkid cert revoke --config C --from-crl FILE...`: the
// revocations a store restored from a backup lost, put back from CRLs this
// CA signed after them (ca.Authority.ReapplyCRL). The root's CRL, which a
// copy of /crl/bundle.pem holds too, is skipped: it lists intermediates.
// Every CRL is tried; a file or CRL refused makes the exit status 1 once
// the others are done.
func reapplyCRLs(w io.Writer, cfgPath string, files []string) error {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	root, err := ca.LoadCertificate(cfg.Resolve(cfg.CA.RootCert))
	if err != nil {
		return err
	}
	var ders [][]byte
	var names []string
	for _, f := range files {
		got, err := readCRLs(f)
		if err != nil {
			return err
		}
		for i, der := range got {
			rl, err := x509.ParseRevocationList(der)
			if err == nil && bytes.Equal(rl.AuthorityKeyId, root.SubjectKeyId) {
				fmt.Fprintf(w, "%s: skipped the root's CRL %s (it lists intermediates; the store holds leaves)\n", f, rl.Number)
				continue
			}
			ders = append(ders, der)
			names = append(names, fmt.Sprintf("%s (CRL %d of %d)", f, i+1, len(got)))
		}
	}
	if len(ders) == 0 {
		return fmt.Errorf("no CRL of an intermediate in %s", strings.Join(files, ", "))
	}
	var failed []string
	i := 0
	err = newAdmin(cfg).reapplyCRLs(ders, w, func(v api.ReappliedView, err error) {
		name := names[i]
		i++
		if v.Number != "" {
			printReapplied(w, name, v)
		}
		if err != nil {
			fmt.Fprintf(w, "%s: %v\n", name, err)
			failed = append(failed, name)
		}
	})
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("refused: %s", strings.Join(failed, "; "))
	}
	return nil
}

// readCRLs reads every CRL of a file: PEM blocks "X509 CRL" (any others
// are refused), or one DER CRL.
func readCRLs(path string) ([][]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if !bytes.Contains(raw, []byte("-----BEGIN")) {
		return [][]byte{raw}, nil
	}
	var out [][]byte
	for rest := raw; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "X509 CRL" {
			return nil, fmt.Errorf("%s: a PEM block %q, not \"X509 CRL\"", path, b.Type)
		}
		out = append(out, b.Bytes)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no PEM block \"X509 CRL\"", path)
	}
	return out, nil
}

// printReapplied says what one CRL put back.
func printReapplied(w io.Writer, name string, v api.ReappliedView) {
	fmt.Fprintf(w, "%s: CRL %s of intermediate %s, thisUpdate %s, %d entries\n", name, v.Number, v.Issuer, v.ThisUpdate.UTC().Format(time.RFC3339), v.Entries)
	for _, r := range v.Revoked {
		fmt.Fprintf(w, "revoked %s again (%s, as of %s): %s\n", r.Serial, r.Reason, r.RevokedAt.UTC().Format(time.RFC3339), strings.Join(r.Names, ", "))
	}
	for _, r := range v.Raised {
		fmt.Fprintf(w, "raised %s to keyCompromise, as the CRL lists it\n", r.Serial)
	}
	for _, r := range v.SameKey {
		fmt.Fprintf(w, "revoked %s too (keyCompromise): it certifies the same key\n", r.Serial)
	}
	for _, r := range v.Unrecorded {
		fmt.Fprintf(w, "listed %s on the CRL again (%s, as of %s): the store has no record of it, issued after its copy was made; OCSP answers \"unknown\" for it\n", r.Serial, r.Reason, r.RevokedAt.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "%d already revoked or listed in the store\n", v.Already)
}
