package main

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"pkid/api"
	"pkid/ca"
	"pkid/internal/atomicfile"
	"pkid/pkidclient"
)

// pkidHome is where client state lives: $PKID_HOME or ~/.pkid.
func pkidHome() string {
	if h := os.Getenv("PKID_HOME"); h != "" {
		return h
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".pkid"
	}
	return filepath.Join(home, ".pkid")
}

func defaultRootsPath() string { return filepath.Join(pkidHome(), "roots.pem") }

// apiClient talks to a pkid over TLS trusting only the given roots file.
type apiClient struct {
	base string
	http *http.Client
	// tokenExpires is the last answer's api.TokenExpiresHeader.
	tokenExpires string
}

// tokenExpiryWarn is how long before its token expires cert sign, cert
// issue and cert revoke start saying so: a CI job's log shows it for a
// week before the job would fail.
const tokenExpiryWarn = 7 * 24 * time.Hour

// noteTokenExpiry writes on w, when the token of the last answer expires
// (api.TokenExpiresHeader) within tokenExpiryWarn, when that is and what
// to do.
func (c *apiClient) noteTokenExpiry(w io.Writer) {
	if note := tokenExpiryNote(c.tokenExpires, time.Now()); note != "" {
		fmt.Fprintln(w, note)
	}
}

// tokenExpiryNote is the note for a token ending at header (RFC 3339) as
// seen at now, "" while it has more than tokenExpiryWarn left.
func tokenExpiryNote(header string, now time.Time) string {
	at, err := time.Parse(time.RFC3339, header)
	if err != nil || at.Sub(now) > tokenExpiryWarn {
		return ""
	}
	left := at.Sub(now).Round(time.Hour)
	if left < time.Hour {
		left = at.Sub(now).Round(time.Minute)
	}
	return fmt.Sprintf("note: this token expires at %s (in %s): ask for a new one before then (pkid token create)", at.UTC().Format(time.RFC3339), left)
}

func newAPIClient(caURL, rootFile string, certs []tls.Certificate) (*apiClient, error) {
	if caURL == "" {
		return nil, usagef("--ca-url is required")
	}
	if rootFile == "" {
		rootFile = defaultRootsPath()
	}
	raw, err := os.ReadFile(rootFile)
	if err != nil {
		return nil, fmt.Errorf("read roots %s (run pkid ca bootstrap first, or give --root): %w", rootFile, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("%s holds no PEM certificate", rootFile)
	}
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, Certificates: certs}
	return &apiClient{base: strings.TrimSuffix(caURL, "/"), http: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment}}}, nil
}

// do sends a JSON request and decodes a 2xx answer into out; a problem
// document becomes a one-line error carrying its detail.
func (c *apiClient) do(method, path, token string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		return usagef("bad --ca-url: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, pkidclient.ExplainTLS(err))
	}
	defer resp.Body.Close()
	c.tokenExpires = resp.Header.Get(api.TokenExpiresHeader)
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		he := pkidclient.NewHTTPError(resp, raw)
		if he.Detail != "" {
			return he
		}
		return fmt.Errorf("%s %s: %w", method, path, he)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: the answer (HTTP %d, %s) is not pkid's JSON: %w", method, path, resp.StatusCode, resp.Header.Get("Content-Type"), err)
		}
	}
	return nil
}

// writePair replaces the key, then the certificate, by rename
// (atomicfile.WriteFiles): both are written out before either is renamed,
// so a reader sees a mismatched pair only between two renames, and a
// failed write or rename leaves the old pair whole. The key file is 0600. Without a
// certificate path the certificate goes to stdout.
func writePair(certPath string, certPEM []byte, keyPath string, keyPEM []byte) error {
	var files []atomicfile.File
	if keyPath != "" && keyPEM != nil {
		files = append(files, atomicfile.File{Path: keyPath, Data: keyPEM, Mode: 0o600})
	}
	if certPath != "" {
		files = append(files, atomicfile.File{Path: certPath, Data: certPEM, Mode: 0o644})
	}
	if err := atomicfile.WriteFiles(files...); err != nil {
		return err
	}
	if certPath == "" {
		_, err := os.Stdout.Write(certPEM)
		return err
	}
	return nil
}

// issuedLeaf reads an issuance answer before anything is written from it:
// a certificate with its chain and, when pub is given, for that key. A
// file written from a proxy's page or an answer without a certificate
// would replace a good one with nothing usable.
func issuedLeaf(resp *api.IssueResponse, pub crypto.PublicKey) (*x509.Certificate, error) {
	blk, _ := pem.Decode([]byte(resp.Certificate))
	if blk == nil || blk.Type != "CERTIFICATE" || len(resp.Chain) == 0 {
		return nil, errors.New("the CA's answer holds no certificate or no chain")
	}
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the CA's certificate: %w", err)
	}
	if pub != nil {
		if k, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(pub) {
			return nil, fmt.Errorf("the CA's certificate %s is not for the key that asked for it", ca.SerialString(leaf.SerialNumber))
		}
	}
	return leaf, nil
}

// noteNotYetValid warns on w when leaf's validity starts well after this
// machine's clock (pkidclient.NotYetValid): the CA's clock or this one is
// wrong, and peers with this clock refuse the certificate until then. The
// user sees why now, not as a TLS error elsewhere later.
func noteNotYetValid(w io.Writer, leaf *x509.Certificate) {
	if d := pkidclient.NotYetValid(time.Now(), leaf); d > 0 {
		fmt.Fprintf(w, "warning: the certificate is valid only from %s, %s after this machine's clock: the CA's clock or this one is wrong, and peers with this clock refuse it until then\n", leaf.NotBefore.UTC().Format(time.RFC3339), d.Round(time.Second))
	}
}

// leafAndChain is what certificate files hold: the leaf, then the
// intermediate (not the root, which clients already trust).
func leafAndChain(r *api.IssueResponse) []byte {
	out := []byte(r.Certificate)
	if len(r.Chain) > 0 {
		out = append(out, r.Chain[0]...)
	}
	return out
}

var errNoFingerprint = errors.New("no certificate in the bundle matches the fingerprint")
