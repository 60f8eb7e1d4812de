package main_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"pkid/api"
	"pkid/ca"
	"pkid/internal/testutil"
)

// mtlsRig is what a test of a TLS server that checks pkid client
// certificates against /crl/bundle.pem needs: a running pkid, certificates
// from it written as the server and client read them, the bundle, and a
// client that reports what the server answered.
type mtlsRig struct {
	s            *server
	admin, plain string
	ca, https    string // the CA's directory and HTTPS address, to serve it again
	dir          string // the relying party's files: certificates, keys, root.crt, crl.pem
	roots        *x509.CertPool
}

func newMTLSRig(t *testing.T) *mtlsRig {
	t.Helper()
	d, https, plain := initCA(t)
	admin := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", filepath.Join(d, "pkid.yaml"), "--role", "default", "--admin"))
	r := &mtlsRig{s: serve(t, d, https), admin: admin, plain: plain, ca: d, https: https, dir: t.TempDir(), roots: x509.NewCertPool()}
	os.Chmod(r.dir, 0o755) // the server may run as another user
	root, err := os.ReadFile(filepath.Join(d, "certs", "root.crt"))
	if err != nil {
		t.Fatal(err)
	}
	r.roots.AppendCertsFromPEM(root)
	os.WriteFile(r.path("root.crt"), root, 0o644)
	r.fetchBundle(t)
	return r
}

func (r *mtlsRig) path(name string) string { return filepath.Join(r.dir, name) }

// issue gets a certificate for name and ip with a CA-made key and writes
// name.crt (leaf then intermediate), name.key and name.pem (both, as
// HAProxy's crt takes them); it returns the serial.
func (r *mtlsRig) issue(t *testing.T, name, ip string) string {
	t.Helper()
	body := fmt.Sprintf(`{"common_name":%q,"ip_addresses":[%q],"ttl":"1h"}`, name, ip)
	req, _ := http.NewRequest("POST", r.s.base+"/v1/issue/default", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+r.admin)
	resp, err := r.s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out api.IssueResponse
	json.Unmarshal(raw, &out)
	if resp.StatusCode != 201 {
		t.Fatalf("issue %s: %d %s", name, resp.StatusCode, raw)
	}
	chain := out.Certificate + out.Chain[0]
	os.WriteFile(r.path(name+".crt"), []byte(chain), 0o644)
	os.WriteFile(r.path(name+".key"), []byte(out.PrivateKey), 0o600)
	os.WriteFile(r.path(name+".pem"), []byte(chain+out.PrivateKey), 0o600)
	return out.Serial
}

// fetchBundle writes the current /crl/bundle.pem to crl.pem and returns it.
func (r *mtlsRig) fetchBundle(t *testing.T) []byte {
	t.Helper()
	b, _ := testutil.Fetch(t, http.DefaultClient, "http://"+r.plain+"/crl/bundle.pem")
	if err := os.WriteFile(r.path("crl.pem"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// fetchBundleListing fetches the bundle until one of its CRLs lists serial
// (a revocation shows within about 100 ms), then leaves it in crl.pem.
func (r *mtlsRig) fetchBundleListing(t *testing.T, serial string) {
	t.Helper()
	want, ok := new(big.Int).SetString(serial, 16)
	if !ok {
		t.Fatalf("serial %q", serial)
	}
	await(t, "the CRL bundle never listed "+serial, func() bool {
		rest := r.fetchBundle(t)
		for {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				return false
			}
			crl, err := x509.ParseRevocationList(b.Bytes)
			if err != nil {
				t.Fatalf("bundle: %v", err)
			}
			for _, e := range crl.RevokedCertificateEntries {
				if e.SerialNumber.Cmp(want) == 0 {
					return true
				}
			}
		}
	})
}

// revoke revokes serial through the REST API.
func (r *mtlsRig) revoke(t *testing.T, serial string) {
	t.Helper()
	if err := r.s.revokeAs(t.Context(), r.admin, serial, "keyCompromise"); err != nil {
		t.Fatal(err)
	}
}

// get fetches https://addr/ as serverName, presenting client's
// certificate unless client is "": the status, or -1 when the handshake
// or the request failed.
func (r *mtlsRig) get(t *testing.T, addr, serverName, client string) int {
	t.Helper()
	tc := &tls.Config{RootCAs: r.roots, ServerName: serverName}
	if client != "" {
		pair, err := tls.LoadX509KeyPair(r.path(client+".crt"), r.path(client+".key"))
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}}
	resp, err := c.Get("https://" + addr + "/")
	if err != nil {
		return -1
	}
	resp.Body.Close()
	return resp.StatusCode
}

// await polls until check holds, failing with what after
// testutil.DutyWait: what it waits for (a CRL published, a relying party
// reloaded) is work done elsewhere, as in every other such wait.
func await(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(testutil.DutyWait)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// awaitCRLListing waits until the CRL served for issuer at
// /crl/<issuer ID> lists leaf, checking each one's signature by issuer.
func awaitCRLListing(t *testing.T, plain string, issuer, leaf *x509.Certificate) {
	t.Helper()
	url := "http://" + plain + "/crl/" + hex.EncodeToString(issuer.SubjectKeyId)
	await(t, url+" never listed "+ca.SerialString(leaf.SerialNumber), func() bool {
		crl := testutil.FetchCRL(t, http.DefaultClient, url)
		if err := crl.CheckSignatureFrom(issuer); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		return slices.ContainsFunc(crl.RevokedCertificateEntries, func(e x509.RevocationListEntry) bool { return e.SerialNumber.Cmp(leaf.SerialNumber) == 0 })
	})
}

// ocspStatus asks the plain-HTTP OCSP responder about leaf and returns
// the answer, checked against issuer.
func ocspStatus(t *testing.T, plain string, leaf, issuer *x509.Certificate) *ocsp.Response {
	t.Helper()
	req, _ := ocsp.CreateRequest(leaf, issuer, nil)
	resp, err := http.Post("http://"+plain+"/ocsp", "application/ocsp-request", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r, err := ocsp.ParseResponseForCert(body, leaf, issuer)
	if err != nil {
		t.Fatalf("OCSP answer for %s: %v", ca.SerialString(leaf.SerialNumber), err)
	}
	return r
}
