package main

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"pkid/api"
	"pkid/ca"
	"pkid/config"
)

type clientFlags struct {
	caURL, token, root string
}

func (f *clientFlags) register(c *cobra.Command, withToken bool) {
	c.Flags().StringVar(&f.caURL, "ca-url", "", "base URL of the CA, e.g. https://127.0.0.1:8443")
	c.Flags().StringVar(&f.root, "root", "", "root certificate to trust (default $PKID_HOME/roots.pem)")
	if withToken {
		c.Flags().StringVar(&f.token, "token", "", "API token (or $PKID_TOKEN)")
	}
}

func (f *clientFlags) tokenOrEnv() (string, error) {
	if f.token == "" {
		f.token = os.Getenv("PKID_TOKEN")
	}
	if f.token == "" {
		return "", usagef("--token (or $PKID_TOKEN) is required")
	}
	return f.token, nil
}

// request posts an issuance request, checks the answer (issuedLeaf: for
// pub, when the caller knows the key) and reports the serial on stderr.
func (f *clientFlags) request(c *cobra.Command, path, token string, body any, pub crypto.PublicKey) (*api.IssueResponse, error) {
	cl, err := newAPIClient(f.caURL, f.root, nil)
	if err != nil {
		return nil, err
	}
	var resp api.IssueResponse
	if err := cl.do("POST", path, token, body, &resp); err != nil {
		return nil, err
	}
	leaf, err := issuedLeaf(&resp, pub)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", path, err)
	}
	fmt.Fprintf(c.ErrOrStderr(), "issued serial %s, valid until %s\n", resp.Serial, resp.NotAfter.Format(time.RFC3339))
	noteNotYetValid(c.ErrOrStderr(), leaf)
	cl.noteTokenExpiry(c.ErrOrStderr())
	return &resp, nil
}

func certCmd() *cobra.Command {
	return group("cert", "get, renew and revoke certificates", certSignCmd(), certIssueCmd(), certRevokeCmd(), certRenewCmd(), certListCmd(), certAdoptCmd())
}

func certSignCmd() *cobra.Command {
	var f clientFlags
	var role, csrFile, ttl, out string
	c := &cobra.Command{
		Use:   "sign --ca-url URL --token T --role R --csr FILE",
		Short: "have a CSR signed",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			tok, err := f.tokenOrEnv()
			if err != nil {
				return err
			}
			csr, err := os.ReadFile(csrFile)
			if err != nil {
				return err
			}
			// The certificate must be for the CSR's key. A CSR only the
			// CA can read gets its own precise refusal from the CA.
			var pub crypto.PublicKey
			if blk, _ := pem.Decode(csr); blk != nil {
				if req, err := x509.ParseCertificateRequest(blk.Bytes); err == nil {
					pub = req.PublicKey
				}
			} else if req, err := x509.ParseCertificateRequest(csr); err == nil {
				// A DER file (openssl req -outform DER) goes as the PEM
				// the API takes.
				pub = req.PublicKey
				csr = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})
			}
			resp, err := f.request(c, "/v1/sign/"+role, tok, map[string]string{"csr": string(csr), "ttl": ttl}, pub)
			if err != nil {
				return err
			}
			return writePair(out, leafAndChain(resp), "", nil)
		},
	}
	f.register(c, true)
	c.Flags().StringVar(&role, "role", "", "role to sign under")
	c.Flags().StringVar(&csrFile, "csr", "", "CSR file, PEM or DER")
	c.Flags().StringVar(&ttl, "ttl", "", "lifetime, e.g. 24h (default: the role's)")
	c.Flags().StringVar(&out, "out", "", "certificate file (default stdout)")
	c.MarkFlagRequired("role")
	c.MarkFlagRequired("csr")
	return c
}

func certIssueCmd() *cobra.Command {
	var f clientFlags
	var role, cn, ttl, out, keyOut, keyType string
	var sans []string
	c := &cobra.Command{
		Use:   "issue --ca-url URL --token T --role R --cn NAME [--san NAME]... (or --san alone)",
		Short: "get a certificate and a CA-generated key",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			tok, err := f.tokenOrEnv()
			if err != nil {
				return err
			}
			if out != "" && keyOut == "" {
				return usagef("--out needs --key-out: the key must be written somewhere")
			}
			if cn == "" && len(sans) == 0 {
				return usagef("give --cn NAME or at least one --san (a certificate needs a name; a SPIFFE ID alone, --san spiffe://..., makes an X.509-SVID)")
			}
			body := map[string]any{"common_name": cn, "ttl": ttl, "key_type": keyType}
			var dns, ips, uris, emails []string
			for _, s := range sans {
				switch {
				case strings.Contains(s, "://"):
					uris = append(uris, s)
				case isIP(s):
					ips = append(ips, s)
				case strings.Contains(s, "@"):
					emails = append(emails, s)
				default:
					dns = append(dns, s)
				}
			}
			body["dns_names"], body["ip_addresses"], body["uris"], body["emails"] = dns, ips, uris, emails
			resp, err := f.request(c, "/v1/issue/"+role, tok, body, nil)
			if err != nil {
				return err
			}
			if _, err := tls.X509KeyPair(leafAndChain(resp), []byte(resp.PrivateKey)); err != nil {
				return fmt.Errorf("POST /v1/issue/%s: the CA's key and certificate are not a pair: %w", role, err)
			}
			if out == "" {
				if _, err := os.Stdout.WriteString(resp.PrivateKey); err != nil {
					return fmt.Errorf("certificate %s was issued but its key could not be printed (%w); nobody has the key: revoke it (pkid cert revoke %s)", resp.Serial, err, resp.Serial)
				}
			}
			return writePair(out, leafAndChain(resp), keyOut, []byte(resp.PrivateKey))
		},
	}
	f.register(c, true)
	c.Flags().StringVar(&role, "role", "", "role to issue under")
	c.Flags().StringVar(&cn, "cn", "", "common name (also a SAN); may be left out when --san names the certificate")
	c.Flags().StringArrayVar(&sans, "san", nil, "extra SAN: DNS name, IP, URI or mailbox (repeatable)")
	c.Flags().StringVar(&ttl, "ttl", "", "lifetime, e.g. 24h")
	c.Flags().StringVar(&keyType, "key-type", "", "key type the CA generates (default ec-p256, or the role's first key type if it does not allow ec-p256)")
	c.Flags().StringVar(&out, "out", "", "certificate file (default stdout)")
	c.Flags().StringVar(&keyOut, "key-out", "", "key file, written 0600")
	c.MarkFlagRequired("role")
	return c
}

// printSameKey names the certificates a keyCompromise revocation took with
// it: they share the compromised key.
func printSameKey(w io.Writer, serials []string) {
	for _, sn := range serials {
		fmt.Fprintf(w, "revoked %s too (keyCompromise): it certifies the same key\n", sn)
	}
}

func certRevokeCmd() *cobra.Command {
	var f clientFlags
	var reason, cfgPath string
	var fromCRL []string
	c := &cobra.Command{
		Use:   "revoke --ca-url URL --token T SERIAL  (or --config D/pkid.yaml SERIAL on the CA host, or --config D/pkid.yaml --from-crl FILE...)",
		Short: "revoke a certificate (admin token, or the CA's config); put back the revocations a restored store lost",
		Args: func(c *cobra.Command, args []string) error {
			if len(fromCRL) > 0 {
				if len(args) > 0 {
					return usagef("--from-crl takes no SERIAL: the CRLs name the certificates")
				}
				return nil
			}
			return cobra.ExactArgs(1)(c, args)
		},
		RunE: func(c *cobra.Command, args []string) error {
			if len(fromCRL) > 0 {
				if cfgPath == "" || c.Flags().Changed("reason") {
					return usagef("--from-crl needs --config (on the CA host) and takes each revocation's reason from the CRL, not --reason")
				}
				return reapplyCRLs(c.ErrOrStderr(), cfgPath, fromCRL)
			}
			// Bad usage before anything is read or dialled.
			if _, err := ca.NormalizeSerial(args[0]); err != nil {
				return usagef("%v", err)
			}
			if err := ca.CheckReason(reason); err != nil {
				return usagef("--reason: %v", err)
			}
			if cfgPath != "" {
				cfg, err := config.Load(cfgPath)
				if err != nil {
					return err
				}
				sn, also, err := newAdmin(cfg).revoke(args[0], reason)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.ErrOrStderr(), "revoked %s (%s)\n", sn, reason)
				printSameKey(c.ErrOrStderr(), also)
				return nil
			}
			tok, err := f.tokenOrEnv()
			if err != nil {
				return err
			}
			cl, err := newAPIClient(f.caURL, f.root, nil)
			if err != nil {
				return err
			}
			var v api.CertView
			if err := cl.do("POST", "/v1/revoke", tok, map[string]string{"serial": args[0], "reason": reason}, &v); err != nil {
				return err
			}
			fmt.Fprintf(c.ErrOrStderr(), "revoked %s (%s) at %s\n", v.Serial, v.Reason, v.RevokedAt.Format(time.RFC3339))
			printSameKey(c.ErrOrStderr(), v.AlsoRevoked)
			cl.noteTokenExpiry(c.ErrOrStderr())
			return nil
		},
	}
	f.register(c, true)
	c.Flags().StringVar(&cfgPath, "config", "", "revoke on the CA host through pkid.yaml (admin socket, or the store when serve is down)")
	c.Flags().StringVar(&reason, "reason", "unspecified", "unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation or privilegeWithdrawn")
	c.Flags().StringArrayVar(&fromCRL, "from-crl", nil, "after a restore from a backup: put back every revocation this CRL file (PEM, e.g. a copy of /crl/bundle.pem, or DER) lists that the store lost (repeatable)")
	return c
}

func isIP(s string) bool { return net.ParseIP(s) != nil }
