// Package pkidclient keeps a Go service in short-lived pkid certificates:
// it holds the current certificate, renews it over mTLS with itself (a new
// key each time) at about two thirds of its remaining life, and hands out
// tls.Configs whose GetCertificate / GetClientCertificate always return
// the current one, so a service gets mTLS in three lines:
//
//	src, err := pkidclient.New(ctx, pkidclient.Options{CAURL: u, RootsFile: r, CertFile: c, KeyFile: k})
//	server := &http.Server{TLSConfig: src.ServerTLSConfig()}
//	client := &http.Client{Transport: &http.Transport{TLSClientConfig: src.ClientTLSConfig()}}
package pkidclient

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"pkid/internal/atomicfile"
)

// Options configure a Source.
type Options struct {
	// CAURL is pkid's HTTPS base URL.
	CAURL string
	// RootsFile holds the trusted root(s), e.g. from `pkid ca bootstrap`
	// ($PKID_HOME/roots.pem). Roots may be given directly instead.
	RootsFile string
	Roots     *x509.CertPool
	// CertFile and KeyFile hold the first certificate (leaf then
	// intermediate) and its key; renewals are written back to them (key
	// first, then certificate, each by rename) unless ReadOnly.
	CertFile, KeyFile string
	ReadOnly          bool
	// Log receives one line per renewal step (default: discard).
	Log *slog.Logger
	// OnRenew, if set, is called after each successful renewal.
	OnRenew func(*x509.Certificate)
	// ClockRecheck is how often a certificate not valid yet asks the CA's
	// clock whether renewing would help (see NotYetValid); default
	// ClockRecheck.
	ClockRecheck time.Duration
}

// Source holds a self-renewing certificate.
type Source struct {
	o      Options
	roots  *x509.CertPool
	cur    atomic.Pointer[tls.Certificate]
	cancel context.CancelFunc
	done   chan struct{}
	err    error // why renewing stopped; written before done is closed
	once   sync.Once
}

// New loads the certificate and starts renewing it in the background until
// ctx ends or Close is called.
func New(ctx context.Context, o Options) (*Source, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	roots := o.Roots
	if roots == nil {
		raw, err := os.ReadFile(o.RootsFile)
		if err != nil {
			return nil, fmt.Errorf("pkidclient: roots: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(raw) {
			return nil, fmt.Errorf("pkidclient: %s holds no certificate", o.RootsFile)
		}
	}
	pair, err := LoadKeyPair(o.CertFile, o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("pkidclient: %w", err)
	}
	if end := pair.Leaf.NotAfter; !time.Now().Before(end) {
		// The CA renews only certificates still valid: a service that
		// was down past its certificate's end needs a token again, and is
		// told so now rather than by a Done that closes at once.
		return nil, fmt.Errorf("pkidclient: %s expired at %s, and pkid renews only certificates still valid: get a new one with a token (an enrollment token: pkid token create --once)", o.CertFile, end.UTC().Format(time.RFC3339))
	}
	s := &Source{o: o, roots: roots, done: make(chan struct{})}
	s.cur.Store(&pair)
	ctx, s.cancel = context.WithCancel(ctx)
	go s.loop(ctx)
	return s, nil
}

// Close stops renewing.
func (s *Source) Close() {
	s.once.Do(s.cancel)
	<-s.done
}

// Done is closed when the Source stops renewing: after Close, when its
// context ends, or when the CA refuses renewal for good (see Err). The
// current certificate is still served until it expires, so a service
// that must not outlive its identity watches Done.
func (s *Source) Done() <-chan struct{} { return s.done }

// Err is nil while the Source renews. Once Done is closed it says why:
// the *HTTPError with which the CA refused renewal (the certificate was
// revoked, the role no longer allows it, renewal.max_age ran out: a token
// is needed again), or the context's error after Close or cancellation.
func (s *Source) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Certificate returns the current leaf.
func (s *Source) Certificate() *x509.Certificate { return s.cur.Load().Leaf }

// ServerTLSConfig serves the current certificate and requires client
// certificates that chain to the roots.
func (s *Source) ServerTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cur.Load(), nil },
		ClientAuth:     tls.RequireAndVerifyClientCert,
		ClientCAs:      s.roots,
	}
}

// ClientTLSConfig presents the current certificate and trusts the roots.
func (s *Source) ClientTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS12,
		RootCAs:              s.roots,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return s.cur.Load(), nil },
	}
}

// RenewAt is when a certificate fetched at now should be renewed: two
// thirds of the way from now to notAfter, minus up to 5% jitter so a fleet
// started together does not renew together; now for one not valid yet
// (see NotYetValid).
func RenewAt(now time.Time, leaf *x509.Certificate) time.Time {
	left := leaf.NotAfter.Sub(now)
	if left <= 0 || NotYetValid(now, leaf) > 0 {
		return now
	}
	var jitter time.Duration
	if j := int64(left / 20); j > 0 {
		n, _ := rand.Int(rand.Reader, big.NewInt(j))
		jitter = time.Duration(n.Int64())
	}
	return now.Add(left*2/3 - jitter)
}

// SleepUntil waits until the wall clock reaches at, or ctx ends. Go's
// timers run on the monotonic clock, which stands still while the machine
// sleeps (a laptop's lid closed, a paused VM): one long timer set before a
// suspend fires that much after at, perhaps after notAfter. So it looks at
// the wall clock at least every wakeStep.
func SleepUntil(ctx context.Context, at time.Time) error {
	at = at.Round(0) // wall clock only
	for {
		d := at.Sub(time.Now().Round(0))
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(min(d, wakeStep))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// wakeStep bounds how late a renewal is after a suspend ends.
const wakeStep = time.Minute

func (s *Source) loop(ctx context.Context) {
	defer close(s.done)
	backoff := 200 * time.Millisecond
	at := RenewAt(time.Now(), s.Certificate())
	for {
		s.o.Log.Info("next renewal", "at", at)
		if err := SleepUntil(ctx, at); err != nil {
			s.err = err
			return
		}
		if cur := s.Certificate(); NotYetValid(time.Now(), cur) > 0 {
			if ok, why := s.caClockAgrees(ctx); !ok {
				s.o.Log.Warn("the certificate is not valid yet; renewing once the CA's clock agrees with this one", "not_before", cur.NotBefore, "why", why)
				at = time.Now().Add(cmp.Or(s.o.ClockRecheck, ClockRecheck))
				continue
			}
		}
		leaf, err := s.Renew(ctx)
		if IsPermanent(err) {
			// Asking again cannot succeed, and retrying until the
			// certificate expires would hide that: say it once and stop.
			s.o.Log.Error("renewal refused; renewing stops", "err", err, "not_after", s.Certificate().NotAfter)
			s.err = err
			return
		}
		if err != nil {
			backoff = RetryDelay(err, backoff, time.Until(s.Certificate().NotAfter))
			s.o.Log.Error("renewal failed", "err", err, "retry_in", backoff)
			at = time.Now().Add(backoff)
			backoff = min(backoff*2, time.Minute, max(time.Until(s.Certificate().NotAfter)/4, 100*time.Millisecond))
			continue
		}
		backoff = 200 * time.Millisecond
		at = RenewAt(time.Now(), leaf)
	}
}

// caClockAgrees is CAClockAgrees over a connection that trusts the roots.
func (s *Source) caClockAgrees(ctx context.Context) (bool, string) {
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: s.roots}}}
	defer hc.CloseIdleConnections()
	return CAClockAgrees(ctx, hc, s.o.CAURL)
}

// Renew renews now: a new key of the same type, POST /v1/renew
// authenticated by the current certificate, then the swap (and the files).
func (s *Source) Renew(ctx context.Context) (*x509.Certificate, error) {
	cur := s.cur.Load()
	key, err := NewKeyLike(cur.PrivateKey.(crypto.Signer))
	if err != nil {
		return nil, err
	}
	l := cur.Leaf
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: l.Subject, DNSNames: l.DNSNames, IPAddresses: l.IPAddresses, URIs: l.URIs, EmailAddresses: l.EmailAddresses}, key)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]string{"csr": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}))})
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: &tls.Config{
		MinVersion: tls.VersionTLS12, RootCAs: s.roots, Certificates: []tls.Certificate{*cur},
	}}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.o.CAURL+"/v1/renew", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("renew: %w", ExplainTLS(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("renew: %w", NewHTTPError(resp, raw))
	}
	if err != nil {
		return nil, fmt.Errorf("renew: reading the answer: %w", err)
	}
	var out struct {
		Certificate string   `json:"certificate"`
		Chain       []string `json:"chain"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("renew: the answer is not JSON: %w", err)
	}
	if out.Certificate == "" || len(out.Chain) == 0 {
		return nil, errors.New("renew: the answer holds no certificate or no chain")
	}
	var oldKey []byte
	if s.o.KeyFile != "" {
		oldKey, _ = os.ReadFile(s.o.KeyFile) // unreadable: PKCS#8, as pkid writes
	}
	keyPEM, err := MarshalKeyLike(key, oldKey)
	if err != nil {
		return nil, err
	}
	certPEM := []byte(out.Certificate + out.Chain[0])
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("renew: %w", err)
	}
	if !s.o.ReadOnly && s.o.CertFile != "" {
		// Key first, then certificate, both written out before either is
		// renamed: a failed write leaves the old pair whole.
		if err := atomicfile.WriteFiles(
			atomicfile.File{Path: s.o.KeyFile, Data: keyPEM, Mode: 0o600},
			atomicfile.File{Path: s.o.CertFile, Data: certPEM, Mode: 0o644},
		); err != nil {
			return nil, fmt.Errorf("renew: save the new pair: %w", err)
		}
	}
	s.cur.Store(&pair)
	s.o.Log.Info("renewed", "serial", fmt.Sprintf("%x", pair.Leaf.SerialNumber), "not_after", pair.Leaf.NotAfter)
	if s.o.OnRenew != nil {
		s.o.OnRenew(pair.Leaf)
	}
	return pair.Leaf, nil
}

// HTTPError is the CA's answer to a request it did not grant: the HTTP
// status and the problem document's detail, which says what and why.
type HTTPError struct {
	Status int
	Detail string
	// RetryAfter is the answer's Retry-After (seconds), 0 without one: a
	// role's rate limit says when the next certificate is allowed.
	RetryAfter time.Duration
}

// NewHTTPError reads a refusal: its status, its problem document's
// detail and its Retry-After.
func NewHTTPError(resp *http.Response, body []byte) *HTTPError {
	var p struct{ Detail string }
	json.Unmarshal(body, &p)
	e := &HTTPError{Status: resp.StatusCode, Detail: p.Detail}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// RetryDelay is how long a renewal that failed with err waits before it
// tries again: backoff, or longer when the CA said when asking again can
// succeed (a rate limit's Retry-After), but never more than half of left,
// the certificate's remaining life. The renew daemon and Source share it.
func RetryDelay(err error, backoff, left time.Duration) time.Duration {
	var he *HTTPError
	if !errors.As(err, &he) {
		return backoff
	}
	return max(backoff, min(he.RetryAfter, left/2))
}

// Error gives the status and pkid's detail, which says why it refused.
func (e *HTTPError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("%s (HTTP %d)", e.Detail, e.Status)
}

// Permanent reports whether the same request cannot succeed later: the
// CA judged it and said no (a 4xx: revoked, expired, unknown, a role that
// no longer allows it), as opposed to timing out (408), limiting the rate
// (429) or failing itself (5xx). A refusal that says when to ask again
// (Retry-After: a certificate the CA holds no record of, which its
// operator may adopt after a restore) is not permanent either. A renewing
// loop stops on a permanent refusal instead of retrying it until the
// certificate expires.
func (e *HTTPError) Permanent() bool {
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests && e.RetryAfter == 0
}

// IsPermanent reports whether err holds a permanent *HTTPError.
func IsPermanent(err error) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.Permanent()
}

// NewKeyLike makes a fresh key of k's type and size, so a rotation never
// changes the key type the role was checked against.
func NewKeyLike(k crypto.Signer) (crypto.Signer, error) {
	switch p := k.Public().(type) {
	case *ecdsa.PublicKey:
		return ecdsa.GenerateKey(p.Curve, rand.Reader)
	case ed25519.PublicKey:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	case *rsa.PublicKey:
		return rsa.GenerateKey(rand.Reader, p.N.BitLen())
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// ExplainTLS adds, to the error of a request to pkid whose server
// certificate does not name the host of the CA URL (the usual mistake of a
// first deployment: a CA made for localhost, reached as ca.internal), the
// names it does carry and where they are set. Other errors it returns as
// they are.
func ExplainTLS(err error) error {
	var he x509.HostnameError
	if !errors.As(err, &he) || he.Certificate == nil {
		return err
	}
	names := slices.Clone(he.Certificate.DNSNames)
	for _, ip := range he.Certificate.IPAddresses {
		names = append(names, ip.String())
	}
	return fmt.Errorf("%w (pkid's server certificate is for %s: use one of those in the CA URL, or add %s to tls.dns_names or tls.ip_addresses in pkid.yaml and restart serve)", err, strings.Join(names, ", "), he.Host)
}
