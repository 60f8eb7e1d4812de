package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.step.sm/crypto/pemutil"

	"pkid/api"
	"pkid/config"
)

func certAdoptCmd() *cobra.Command {
	var cfgPath, role string
	var viaACME bool
	c := &cobra.Command{
		Use:   "adopt --config D/pkid.yaml --role R [--acme] FILE...",
		Short: "after a restore from a backup: record certificates this CA issued since the backup, so they renew, list and revoke again",
		Long: `A store restored from a backup holds no record of the certificates issued
after the backup was made: they cannot renew over mTLS, nor be listed or
revoked, and OCSP answers "unknown" for them. Given their files (as the
services hold them: the leaf first, a chain after it is ignored; PEM or
DER), adopt records each under the role named, once the CA has checked
that its intermediate, current or retired, signed it, that it has not
expired, that the role as it is now would issue it, that its key is not
blocked and that no CRL entry revokes it. The record dates its last
authorization at the certificate's issuance (for a renewal the real one
was earlier, and is not known: renewal.max_age then runs out that much
later) and names you as its authorizer. With --acme the
certificates are recorded as ACME's: they renew through ACME only.
A certificate recorded already is left as it is. Works through the admin
socket while serve runs, on the store otherwise.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("name the certificate files to adopt")
			}
			return nil
		},
		RunE: func(c *cobra.Command, files []string) error {
			if role == "" {
				return usagef("--role: name the role the certificates were issued under")
			}
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			var ders [][]byte
			for _, f := range files {
				// The leaf: the first certificate of a PEM file (its
				// chain, and a key beside it, skipped), or DER.
				leaf, err := pemutil.ReadCertificate(f, pemutil.WithFirstBlock())
				if err != nil {
					return err
				}
				ders = append(ders, leaf.Raw)
			}
			return adoptFiles(c.ErrOrStderr(), newAdmin(cfg), files, ders, role, viaACME)
		},
	}
	c.Flags().StringVar(&cfgPath, "config", "", "path of pkid.yaml (on the CA host)")
	c.Flags().StringVar(&role, "role", "", "the role the certificates were issued under")
	c.Flags().BoolVar(&viaACME, "acme", false, "the certificates came from ACME orders: record them as ACME's, which renew through ACME only")
	c.MarkFlagRequired("config")
	return c
}

// adoptFiles adopts each certificate, saying what became of it, one line
// a file; every one is tried, and any refused makes the exit status 1.
func adoptFiles(w io.Writer, a *admin, files []string, ders [][]byte, role string, viaACME bool) error {
	var refused []string
	i := 0
	err := a.adopt(ders, role, viaACME, w, func(v api.AdoptedView, err error) {
		name := files[i]
		i++
		switch {
		case err != nil:
			fmt.Fprintf(w, "%s: %v\n", name, err)
			refused = append(refused, name)
		case v.Already:
			fmt.Fprintf(w, "%s: %s is recorded already (role %s)\n", name, v.Serial, v.Role)
		default:
			fmt.Fprintf(w, "%s: adopted %s [%s] under role %s, valid until %s\n", name, v.Serial, strings.Join(v.Names, ", "), v.Role, v.NotAfter.UTC().Format(time.RFC3339))
		}
	})
	if err != nil {
		return err
	}
	if len(refused) > 0 {
		return fmt.Errorf("not adopted: %s", strings.Join(refused, ", "))
	}
	return nil
}
