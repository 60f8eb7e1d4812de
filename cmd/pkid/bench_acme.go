package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// acmeWorker is one ACME account driving complete orders as fast as the
// server allows, in lego's flow: a challenge answered valid is not polled;
// a pending authorization is polled at once, then from 10 ms (not the
// seconds a polite client waits).
type acmeWorker struct {
	c      *http.Client
	dir    map[string]string
	key    crypto.Signer
	kid    string
	nonce  string
	thumb  string
	answer *sync.Map // token -> key authorization, served on http-01
}

func (w *acmeWorker) post(url string, payload any) (*http.Response, []byte, error) {
	for attempt := 0; ; attempt++ {
		if w.nonce == "" {
			resp, err := w.c.Head(w.dir["newNonce"])
			if err != nil {
				return nil, nil, kindError{"transport", err}
			}
			resp.Body.Close()
			w.nonce = resp.Header.Get("Replay-Nonce")
		}
		var raw []byte
		if payload != nil {
			raw, _ = json.Marshal(payload)
		}
		body, err := w.sign(url, raw)
		if err != nil {
			return nil, nil, err
		}
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/jose+json")
		resp, err := w.c.Do(req)
		if err != nil {
			return nil, nil, kindError{"transport", err}
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		w.nonce = resp.Header.Get("Replay-Nonce")
		if err != nil {
			return nil, nil, kindError{"transport", err}
		}
		if resp.StatusCode >= 400 {
			if strings.Contains(string(b), "badNonce") && attempt == 0 {
				continue
			}
			var p struct{ Type, Detail string }
			json.Unmarshal(b, &p)
			return resp, b, kindError{strings.TrimPrefix(p.Type, "urn:ietf:params:acme:error:"), errors.New(p.Detail)}
		}
		return resp, b, nil
	}
}

func prepareACME(_ context.Context, f *benchFlags) (op, error) {
	roots, err := loadRoots(f.root)
	if err != nil {
		return nil, err
	}
	answers := &sync.Map{}
	l, err := net.Listen("tcp", f.http01)
	if err != nil {
		return nil, fmt.Errorf("http-01 listener %s (the server's acme.http01_port): %w", f.http01, err)
	}
	go (&http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if ka, ok := answers.Load(strings.TrimPrefix(r.URL.Path, "/.well-known/acme-challenge/")); ok {
			io.WriteString(rw, ka.(string))
			return
		}
		http.NotFound(rw, r)
	})}).Serve(l)
	dirURL := f.caURL + "/acme/" + f.role + "/directory"
	workers := make([]*acmeWorker, f.concurrency)
	for i := range workers {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		w := &acmeWorker{c: benchClient(f, roots, nil), key: key, answer: answers}
		resp, err := w.c.Get(dirURL)
		if err != nil {
			return nil, err
		}
		json.NewDecoder(resp.Body).Decode(&w.dir)
		resp.Body.Close()
		tp, _ := (&jose.JSONWebKey{Key: key.Public()}).Thumbprint(crypto.SHA256)
		w.thumb = base64.RawURLEncoding.EncodeToString(tp)
		r, _, err := w.post(w.dir["newAccount"], map[string]any{"termsOfServiceAgreed": true})
		if err != nil {
			return nil, fmt.Errorf("acme account: %w", err)
		}
		w.kid = r.Header.Get("Location")
		workers[i] = w
	}
	// One CSR per order, made before the clock starts. Without a stub
	// resolver the identifier is 127.0.0.1, which the default role allows
	// and needs no DNS; with one, each CSR names its own DNS name, which the
	// server resolves through the stub at validation.
	idents, err := acmeIdentifiers(f)
	if err != nil {
		return nil, err
	}
	csrs := make([]string, len(idents))
	for i, id := range idents {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.CertificateRequest{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		if id["type"] == "dns" {
			tmpl = &x509.CertificateRequest{Subject: pkix.Name{CommonName: id["value"]}, DNSNames: []string{id["value"]}}
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
		if err != nil {
			return nil, err
		}
		csrs[i] = base64.RawURLEncoding.EncodeToString(der)
	}
	return func(_ context.Context, wi, i int) error {
		w := workers[wi]
		_, b, err := w.post(w.dir["newOrder"], map[string]any{"identifiers": []map[string]string{idents[i%len(idents)]}})
		if err != nil {
			return err
		}
		var order struct {
			Authorizations []string
			Finalize       string
			Certificate    string
			Status         string
		}
		json.Unmarshal(b, &order)
		for _, az := range order.Authorizations {
			if err := w.validate(az); err != nil {
				return err
			}
		}
		_, b, err = w.post(order.Finalize, map[string]any{"csr": csrs[i%len(csrs)]})
		if err != nil {
			return err
		}
		json.Unmarshal(b, &order)
		if order.Status != "valid" || order.Certificate == "" {
			return kindError{"order-" + order.Status, errors.New("finalize did not complete")}
		}
		_, b, err = w.post(order.Certificate, nil)
		if err == nil && !bytes.Contains(b, []byte("BEGIN CERTIFICATE")) {
			err = kindError{"download", errors.New("no certificate")}
		}
		return err
	}, nil
}

// acmeIdentifiers is the identifier of each prepared order: 127.0.0.1, or
// with --dns-listen o<N>.<acme-domain>, resolved by a stub this starts.
func acmeIdentifiers(f *benchFlags) ([]map[string]string, error) {
	n := min(f.count, 2000)
	out := make([]map[string]string, n)
	if f.dnsListen == "" {
		for i := range out {
			out[i] = map[string]string{"type": "ip", "value": "127.0.0.1"}
		}
		return out, nil
	}
	host, _, err := net.SplitHostPort(f.http01)
	if err != nil {
		return nil, usagef("--http01-listen %q: %v", f.http01, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.To4() == nil {
		return nil, usagef("--http01-listen %q: with --dns-listen its host must be an IPv4 address, which every name resolves to", f.http01)
	}
	if err := startStubResolver(f.dnsListen, ip); err != nil {
		return nil, err
	}
	for i := range out {
		out[i] = map[string]string{"type": "dns", "value": fmt.Sprintf("o%d.%s", i, f.acmeDomain)}
	}
	return out, nil
}

func (w *acmeWorker) validate(authzURL string) error {
	_, b, err := w.post(authzURL, nil)
	if err != nil {
		return err
	}
	var az struct {
		Status     string
		Challenges []struct{ Type, URL, Token string }
	}
	json.Unmarshal(b, &az)
	if az.Status == "valid" {
		return nil
	}
	for _, ch := range az.Challenges {
		if ch.Type != "http-01" {
			continue
		}
		w.answer.Store(ch.Token, ch.Token+"."+w.thumb)
		defer w.answer.Delete(ch.Token)
		_, b, err := w.post(ch.URL, map[string]any{})
		if err != nil {
			return err
		}
		// Like lego, trust a decided answer: pkid and step-ca validate
		// while the POST waits, and a valid challenge needs no poll. An
		// answer that does not decode is polled like a pending one.
		var c struct{ Status string }
		_ = json.Unmarshal(b, &c)
		switch c.Status {
		case "valid":
			return nil
		case "invalid":
			return kindError{"challenge-invalid", errors.New("validation failed")}
		}
		wait := 10 * time.Millisecond
		for range 200 {
			_, b, err := w.post(authzURL, nil)
			if err != nil {
				return err
			}
			json.Unmarshal(b, &az)
			switch az.Status {
			case "valid":
				return nil
			case "pending":
			default:
				return kindError{"authz-" + az.Status, errors.New("validation failed")}
			}
			time.Sleep(wait)
			wait = min(wait*3/2, 500*time.Millisecond)
		}
		return kindError{"authz-timeout", errors.New("still pending")}
	}
	return kindError{"no-http01", errors.New("no http-01 challenge offered")}
}

// sign builds a flattened ES256 JWS by hand: the load generator should
// spend its CPU on the protocol, not on building a go-jose signer per
// request (the server side still verifies with go-jose).
func (w *acmeWorker) sign(url string, payload []byte) ([]byte, error) {
	hdr := map[string]any{"alg": "ES256", "nonce": w.nonce, "url": url}
	if w.kid != "" {
		hdr["kid"] = w.kid
	} else {
		hdr["jwk"] = jose.JSONWebKey{Key: w.key.Public()}
	}
	hj, err := json.Marshal(hdr)
	if err != nil {
		return nil, err
	}
	enc := base64.RawURLEncoding
	protected, body := enc.EncodeToString(hj), enc.EncodeToString(payload)
	sum := sha256.Sum256([]byte(protected + "." + body))
	r, s, err := ecdsa.Sign(rand.Reader, w.key.(*ecdsa.PrivateKey), sum[:])
	if err != nil {
		return nil, err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return json.Marshal(map[string]string{"protected": protected, "payload": body, "signature": enc.EncodeToString(sig)})
}
