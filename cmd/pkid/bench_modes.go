package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"

	"pkid/api"
	"pkid/ca"
)

// makeCSRs prepares n distinct CSRs (and keys) before the clock starts.
func makeCSRs(keyType string, n int) ([][]byte, error) {
	n = min(n, 2000)
	out := make([][]byte, n)
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
	per := (n + runtime.NumCPU() - 1) / runtime.NumCPU()
	for w := 0; w < n; w += per {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				key, err := ca.GenerateKey(keyType)
				if err == nil {
					out[i], err = x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: fmt.Sprintf("bench-%d.internal", i)}}, key)
				}
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
			}
		}(w, min(w+per, n))
	}
	wg.Wait()
	return out, firstErr
}

// benchCrypto measures the unavoidable per-certificate work in-process on
// every core: parse and verify a CSR, then x509.CreateCertificate with a
// CA key of the given type (which signs and verifies its own signature).
func benchCrypto(f *benchFlags) (*benchResult, error) {
	caKey, err := ca.GenerateKey(f.keyType)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), SubjectKeyId: []byte{1, 2, 3}}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	csrs, err := makeCSRs("ec-p256", 256)
	if err != nil {
		return nil, err
	}
	count := f.count
	if count < 1 {
		count = 4000
	}
	workers := runtime.NumCPU()
	// One worker per core, so each part's wall time is its CPU time.
	var csrNs, createNs atomic.Int64
	do := func(_ context.Context, _, i int) error {
		t0 := time.Now()
		csr, err := x509.ParseCertificateRequest(csrs[i%len(csrs)])
		if err != nil {
			return err
		}
		if err := csr.CheckSignature(); err != nil {
			return err
		}
		t1 := time.Now()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i) + 2), DNSNames: []string{csr.Subject.CommonName},
			NotBefore: t1, NotAfter: t1.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		_, err = x509.CreateCertificate(rand.Reader, tmpl, caCert, csr.PublicKey, caKey)
		csrNs.Add(int64(t1.Sub(t0)))
		createNs.Add(int64(time.Since(t1)))
		return err
	}
	r := measure(context.Background(), &benchFlags{mode: "crypto", keyType: f.keyType, concurrency: workers, count: count}, do)
	if r.OK > 0 {
		r.CSRCheckUs = float64(csrNs.Load()) / 1e3 / float64(r.OK)
		r.CreateUs = float64(createNs.Load()) / 1e3 / float64(r.OK)
	}
	return r, nil
}

func postJSON(c *http.Client, url, token string, body []byte) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return c.Do(req)
}

func clients(f *benchFlags, certs func(w int) []tls.Certificate) ([]*http.Client, error) {
	roots, err := loadRoots(f.root)
	if err != nil {
		return nil, err
	}
	cs := make([]*http.Client, f.concurrency)
	for w := range cs {
		var c []tls.Certificate
		if certs != nil {
			c = certs(w)
		}
		cs[w] = benchClient(f, roots, c)
	}
	return cs, nil
}

func prepareSign(_ context.Context, f *benchFlags) (op, error) {
	csrs, err := makeCSRs(f.keyType, f.count)
	if err != nil {
		return nil, err
	}
	bodies := make([][]byte, len(csrs))
	for i, der := range csrs {
		bodies[i], _ = json.Marshal(map[string]string{"csr": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), "ttl": "1h"})
	}
	cs, err := clients(f, nil)
	if err != nil {
		return nil, err
	}
	url := f.caURL + "/v1/sign/" + f.role
	return func(_ context.Context, w, i int) error {
		_, err := expect(postJSON(cs[w], url, f.token, bodies[i%len(bodies)]))
		return err
	}, nil
}

func prepareIssue(_ context.Context, f *benchFlags) (op, error) {
	cs, err := clients(f, nil)
	if err != nil {
		return nil, err
	}
	url := f.caURL + "/v1/issue/" + f.role
	return func(_ context.Context, w, i int) error {
		body := fmt.Appendf(nil, `{"common_name":"bench-%d.internal","ttl":"1h","key_type":%q}`, i, f.keyType)
		_, err := expect(postJSON(cs[w], url, f.token, body))
		return err
	}, nil
}

// issueOne gets a certificate and key with the token (for renew and ocsp).
func issueOne(c *http.Client, f *benchFlags, name string) (tls.Certificate, *x509.Certificate, error) {
	body := fmt.Appendf(nil, `{"common_name":%q,"ttl":"1h","key_type":%q}`, name, f.keyType)
	raw, err := expect(postJSON(c, f.caURL+"/v1/issue/"+f.role, f.token, body))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	var out api.IssueResponse
	if err = json.Unmarshal(raw, &out); err == nil {
		_, err = issuedLeaf(&out, nil)
	}
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("POST %s/v1/issue/%s: not an issuance answer (%v): %.200q", f.caURL, f.role, err, raw)
	}
	pair, err := tls.X509KeyPair(leafAndChain(&out), []byte(out.PrivateKey))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	if len(pair.Certificate) < 2 {
		return tls.Certificate{}, nil, fmt.Errorf("POST %s/v1/issue/%s: the chain holds no PEM certificate", f.caURL, f.role)
	}
	issuer, err := x509.ParseCertificate(pair.Certificate[1])
	return pair, issuer, err
}

func prepareRenew(_ context.Context, f *benchFlags) (op, error) {
	setup, err := clients(&benchFlags{root: f.root, concurrency: 1}, nil)
	if err != nil {
		return nil, err
	}
	pairs := make([]tls.Certificate, f.concurrency)
	for w := range pairs {
		if pairs[w], _, err = issueOne(setup[0], f, fmt.Sprintf("renew-%d.internal", w)); err != nil {
			return nil, fmt.Errorf("prepare renew: %w", err)
		}
	}
	cs, err := clients(f, func(w int) []tls.Certificate { return []tls.Certificate{pairs[w]} })
	if err != nil {
		return nil, err
	}
	url := f.caURL + "/v1/renew"
	return func(_ context.Context, w, _ int) error {
		_, err := expect(postJSON(cs[w], url, "", nil))
		return err
	}, nil
}

func prepareOCSP(_ context.Context, f *benchFlags) (op, error) {
	setup, err := clients(&benchFlags{root: f.root, concurrency: 1}, nil)
	if err != nil {
		return nil, err
	}
	pair, issuer, err := issueOne(setup[0], f, "ocsp-bench.internal")
	if err != nil {
		return nil, fmt.Errorf("prepare ocsp: %w", err)
	}
	req, err := ocsp.CreateRequest(pair.Leaf, issuer, nil)
	if err != nil {
		return nil, err
	}
	url := f.ocspURL
	if url == "" && len(pair.Leaf.OCSPServer) > 0 {
		url = pair.Leaf.OCSPServer[0]
	}
	if url == "" {
		return nil, usagef("the role's leaves carry no OCSP URL; give --ocsp-url")
	}
	// Leaves point at plain HTTP, but an https:// --ocsp-url (the API
	// listener serves OCSP too) works with the same root.
	cs, err := clients(f, nil)
	if err != nil {
		return nil, err
	}
	return func(_ context.Context, w, _ int) error {
		resp, err := cs[w].Post(url, "application/ocsp-request", bytes.NewReader(req))
		_, err = expect(resp, err, http.StatusOK)
		return err
	}, nil
}
