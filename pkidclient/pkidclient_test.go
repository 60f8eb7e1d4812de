package pkidclient_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pkid/api"
	"pkid/ca"
	"pkid/config"
	"pkid/internal/testserver"
	"pkid/internal/testutil"
	"pkid/pkidclient"
)

const svcRole = `
allowed_domains: [svc.internal]
allow_subdomains: true
allowed_ip_ranges: []
allowed_uri_patterns: []
default_ttl: 6s
max_ttl: 10s
key_types: [ec-p256]
ext_key_usage: [server_auth, client_auth]
renewal: {enabled: true, max_age: 1h}
revocation_pointers: false
acme: {enabled: false, challenges: [], require_eab: false}`

// startPKID starts a real pkid with the svc role on the wall clock (the
// services renew on it) until the test ends, and returns it and a pool
// holding its root.
func startPKID(t *testing.T) (*api.Running, *x509.CertPool) {
	t.Helper()
	return startPKIDOn(t, nil)
}

// startPKIDOn is startPKID on clock (nil: the system clock).
func startPKIDOn(t *testing.T, clock *ca.FakeClock) (*api.Running, *x509.CertPool) {
	t.Helper()
	ports := testutil.Listen(t)
	dir := testutil.CADir(t, "ec-p256", ports.HTTPSAddr(), ports.HTTPAddr(), func(y string) string { return testutil.AddRole(y, "svc", svcRole) })
	cfg, err := config.Load(filepath.Join(dir, "pkid.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pk, err := testserver.Start(cfg, ports, clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pk.Stop() })
	roots := x509.NewCertPool()
	roots.AddCert(pk.Run.CA.Root())
	return pk.Run, roots
}

// issueFiles has the CA issue the svc role's certificate for name (ttl 0:
// the role's default) with a key it makes, and writes them as a service
// holds them: tls.crt (leaf and intermediate) and tls.key (0600).
func issueFiles(t *testing.T, run *api.Running, name string, ttl time.Duration) (crt, key string, iss *ca.Issued) {
	t.Helper()
	iss, k, err := run.CA.Issue(context.Background(), &ca.IssueRequest{SignRequest: ca.SignRequest{Role: "svc", Requester: "test", TTL: ttl}, CommonName: name})
	if err != nil {
		t.Fatal(err)
	}
	d := t.TempDir()
	kp, _ := ca.MarshalKey(k)
	crt, key = filepath.Join(d, "tls.crt"), filepath.Join(d, "tls.key")
	os.WriteFile(key, kp, 0o600)
	os.WriteFile(crt, append(iss.PEM, iss.Chain[0]...), 0o644)
	return crt, key, iss
}

// TestTwoServicesRenewThemselves: a server requiring client certificates
// and a client, both with 6-second certificates from a real pkid, renew
// themselves through the library at least twice while requests between
// them keep succeeding. (Six, not three: notAfter falls to a whole second
// and renewal comes two thirds of the way there, so a 3-second certificate
// leaves its renewal under a second before expiry, which a loaded 2-core
// machine has been seen to miss.)
func TestTwoServicesRenewThemselves(t *testing.T) {
	run, roots := startPKID(t)
	ctx := context.Background()

	var renewals [2]atomic.Int32
	sources := make([]*pkidclient.Source, 2)
	for i, name := range []string{"a.svc.internal", "b.svc.internal"} {
		crt, key, _ := issueFiles(t, run, name, 0)
		var err error
		sources[i], err = pkidclient.New(ctx, pkidclient.Options{CAURL: "https://" + run.HTTPSAddr, Roots: roots, CertFile: crt, KeyFile: key,
			OnRenew: func(*x509.Certificate) { renewals[i].Add(1) }})
		if err != nil {
			t.Fatal(err)
		}
		defer sources[i].Close()
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: sources[0].ServerTLSConfig(), ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello "+r.TLS.PeerCertificates[0].DNSNames[0])
	})}
	go srv.ServeTLS(l, "", "")
	defer srv.Close()
	ctc := sources[1].ClientTLSConfig()
	ctc.ServerName = "a.svc.internal"
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: ctc, DisableKeepAlives: true}}

	var mu sync.Mutex
	ok, failed := 0, 0
	deadline := time.Now().Add(25 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := client.Get("https://" + l.Addr().String() + "/")
		mu.Lock()
		if err != nil {
			failed++
			t.Errorf("request failed: %v", err)
		} else {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "hello b.svc.internal" {
				t.Errorf("answer %q", b)
			}
			ok++
		}
		mu.Unlock()
		if renewals[0].Load() >= 2 && renewals[1].Load() >= 2 {
			break
		}
		time.Sleep(30 * time.Millisecond)
	}
	if renewals[0].Load() < 2 || renewals[1].Load() < 2 {
		t.Fatalf("renewals: server %d, client %d (want ≥2 each)", renewals[0].Load(), renewals[1].Load())
	}
	if failed > 0 {
		t.Fatalf("%d of %d requests failed", failed, ok+failed)
	}
	t.Logf("%d requests, renewals server %d client %d", ok, renewals[0].Load(), renewals[1].Load())
}

// TestRenewalRetriedAfterCATrouble: when renewal is due the CA cannot
// commit (its database file may not grow: RLIMIT_FSIZE, as a full disk),
// so renewal fails with the CA's 500; the Source keeps its certificate,
// retries with backoff, and renews once the CA works again, before the
// certificate expires. (The limit is the whole test process's; the
// Source's own files are far below it.)
func TestRenewalRetriedAfterCATrouble(t *testing.T) {
	run, roots := startPKID(t)
	ctx := context.Background()
	crt, keyFile, _ := issueFiles(t, run, "c.svc.internal", 8*time.Second)
	first, _ := ca.LoadCertificate(crt)

	lift := testutil.LimitFileSize(t, 8<<10) // bbolt's meta pages: no commit can write its pages

	var log testutil.SyncBuffer
	renewed := make(chan *x509.Certificate, 4)
	src, err := pkidclient.New(ctx, pkidclient.Options{CAURL: "https://" + run.HTTPSAddr, Roots: roots, CertFile: crt, KeyFile: keyFile,
		Log: slog.New(slog.NewTextHandler(&log, nil)), OnRenew: func(c *x509.Certificate) { renewed <- c }})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// Renewal is due about 5 s in; let it fail for a while.
	deadline := time.Now().Add(7 * time.Second)
	for !strings.Contains(log.String(), "renewal failed") {
		if time.Now().After(deadline) {
			t.Fatalf("no failed renewal logged:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if src.Certificate().SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatal("the certificate changed while the CA could not commit")
	}
	lift()
	select {
	case c := <-renewed:
		if c.SerialNumber.Cmp(first.SerialNumber) == 0 || !time.Now().Before(first.NotAfter) {
			t.Fatalf("renewed %x at %s; the first expired at %s", c.SerialNumber, time.Now(), first.NotAfter)
		}
		if onDisk, _ := ca.LoadCertificate(crt); onDisk.SerialNumber.Cmp(c.SerialNumber) != 0 {
			t.Fatal("the renewed certificate was not written back")
		}
	case <-time.After(time.Until(first.NotAfter)):
		t.Fatalf("not renewed before the certificate expired:\n%s", log.String())
	}
}

// TestRenewalStopsWhenRefused: once the CA refuses renewal for good (the
// certificate was revoked), the Source stops renewing, closes Done and
// reports the refusal through Err, having asked once: it does not retry
// until the certificate expires. It keeps serving the certificate it has.
func TestRenewalStopsWhenRefused(t *testing.T) {
	run, roots := startPKID(t)
	ctx := context.Background()
	crt, keyFile, iss := issueFiles(t, run, "r.svc.internal", 6*time.Second)
	if _, _, err := run.CA.Revoke(ctx, iss.Record.Serial, "privilegeWithdrawn"); err != nil {
		t.Fatal(err)
	}

	var log testutil.SyncBuffer
	src, err := pkidclient.New(ctx, pkidclient.Options{CAURL: "https://" + run.HTTPSAddr, Roots: roots, CertFile: crt, KeyFile: keyFile,
		Log: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if src.Err() != nil {
		t.Fatalf("Err before renewal stopped: %v", src.Err())
	}
	select {
	case <-src.Done():
	case <-time.After(time.Until(iss.Record.NotAfter)):
		t.Fatalf("still renewing when the certificate expired:\n%s", log.String())
	}
	var he *pkidclient.HTTPError
	if !errors.As(src.Err(), &he) || he.Status != http.StatusUnauthorized || !he.Permanent() || !strings.Contains(he.Detail, "was revoked (privilegeWithdrawn)") {
		t.Fatalf("Err = %v, want the CA's 401 for a revoked certificate", src.Err())
	}
	if n := strings.Count(log.String(), "renewal refused; renewing stops"); n != 1 || strings.Contains(log.String(), "renewal failed") {
		t.Fatalf("want one refusal and no retry logged:\n%s", log.String())
	}
	if ca.SerialString(src.Certificate().SerialNumber) != iss.Record.Serial {
		t.Fatal("the certificate changed")
	}
}

// TestNewRefusesAnExpiredCertificate: a service that was down past its
// certificate's end is told at New that it needs a token again, rather than
// starting with a dead identity and a Source that stops at once.
func TestNewRefusesAnExpiredCertificate(t *testing.T) {
	run, roots := startPKID(t)
	crt, keyFile, iss := issueFiles(t, run, "late.svc.internal", time.Second)
	time.Sleep(time.Until(iss.Record.NotAfter) + 10*time.Millisecond)
	src, err := pkidclient.New(context.Background(), pkidclient.Options{CAURL: "https://" + run.HTTPSAddr, Roots: roots, CertFile: crt, KeyFile: keyFile})
	if err == nil {
		src.Close()
		t.Fatal("New accepted an expired certificate")
	}
	if !strings.Contains(err.Error(), "expired at") || !strings.Contains(err.Error(), "get a new one with a token") {
		t.Fatalf("New: %v", err)
	}
}

// TestLoadKeyPairOrder: a chain file with the intermediate first (a cat in
// the wrong order) is refused saying where the key's certificate is and
// what order is wanted, where Go said only that the key does not match; a
// key that matches nothing in the file keeps Go's error.
func TestLoadKeyPairOrder(t *testing.T) {
	run, _ := startPKID(t)
	crt, key, iss := issueFiles(t, run, "order.svc.internal", 0)
	if _, err := pkidclient.LoadKeyPair(crt, key); err != nil {
		t.Fatalf("ok/leaf first: %v", err)
	}
	reversed := filepath.Join(t.TempDir(), "reversed.crt")
	os.WriteFile(reversed, append([]byte(iss.Chain[0]), iss.PEM...), 0o644)
	_, err := pkidclient.LoadKeyPair(reversed, key)
	if err == nil || !strings.Contains(err.Error(), `is number 2 ("order.svc.internal"), not the first: put the leaf first`) {
		t.Fatalf("fail/intermediate first: %v", err)
	}
	_, otherKey, _ := issueFiles(t, run, "other.svc.internal", 0)
	if _, err := pkidclient.LoadKeyPair(reversed, otherKey); err == nil || !strings.Contains(err.Error(), "private key does not match public key") {
		t.Fatalf("fail/a key of another certificate: %v", err)
	}
}

// TestHTTPErrorPermanent: which answers a renewing loop gives up on.
func TestHTTPErrorPermanent(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   bool
	}{
		{400, true}, {401, true}, {403, true}, {404, true}, {409, true}, {413, true},
		{408, false}, {429, false}, {500, false}, {502, false}, {503, false}, {201, false}, {302, false},
	} {
		if got := (&pkidclient.HTTPError{Status: tc.status}).Permanent(); got != tc.want {
			t.Errorf("HTTP %d: Permanent() = %v, want %v", tc.status, got, tc.want)
		}
	}
	if (&pkidclient.HTTPError{Status: 401, RetryAfter: 5 * time.Minute}).Permanent() {
		t.Error("HTTP 401 with Retry-After (no record yet: it may be adopted) is permanent")
	}
	if pkidclient.IsPermanent(errors.New("dial tcp: connection refused")) || !pkidclient.IsPermanent(fmt.Errorf("renew: %w", &pkidclient.HTTPError{Status: 401})) {
		t.Fatal("IsPermanent does not look through wrapping, or takes a network error for a refusal")
	}
}

// TestNewHTTPError: a refusal's status, detail and Retry-After are read
// from the answer; a missing or date-form Retry-After is 0.
func TestNewHTTPError(t *testing.T) {
	for _, tc := range []struct {
		retry string
		want  time.Duration
	}{{"30", 30 * time.Second}, {"", 0}, {"Fri, 27 Nov 2026 23:00:00 GMT", 0}, {"-5", 0}} {
		rec := httptest.NewRecorder()
		if tc.retry != "" {
			rec.Header().Set("Retry-After", tc.retry)
		}
		rec.WriteHeader(http.StatusTooManyRequests)
		e := pkidclient.NewHTTPError(rec.Result(), []byte(`{"type":"x","detail":"role \"ci\" allows 1 certificates per 1h0m0s"}`))
		if e.Status != 429 || e.RetryAfter != tc.want || !strings.HasPrefix(e.Detail, `role "ci" allows`) || e.Permanent() {
			t.Errorf("Retry-After %q: %+v", tc.retry, e)
		}
	}
}

// TestRetryDelay: a failed renewal waits its backoff, or a refusal's
// Retry-After when that is longer, never more than half the remaining life.
func TestRetryDelay(t *testing.T) {
	limited := fmt.Errorf("renew: %w", &pkidclient.HTTPError{Status: 429, RetryAfter: time.Minute})
	for _, tc := range []struct {
		name    string
		err     error
		backoff time.Duration
		left    time.Duration
		want    time.Duration
	}{
		{"no answer", errors.New("dial tcp: connection refused"), time.Second, time.Hour, time.Second},
		{"5xx without Retry-After", &pkidclient.HTTPError{Status: 500}, 4 * time.Second, time.Hour, 4 * time.Second},
		{"rate limited", limited, time.Second, time.Hour, time.Minute},
		{"rate limited, longer backoff", limited, 2 * time.Minute, time.Hour, 2 * time.Minute},
		{"rate limited near the end", limited, time.Second, 30 * time.Second, 15 * time.Second},
	} {
		if got := pkidclient.RetryDelay(tc.err, tc.backoff, tc.left); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestRenewRefusesABadAnswer: a 201 whose body is not a renewal (a proxy's
// page, a body cut short, JSON without the certificate) fails the renewal
// with what was wrong, and the certificate and its files stay as they
// were.
func TestRenewRefusesABadAnswer(t *testing.T) {
	run, _ := startPKID(t)
	for _, tc := range []struct {
		name, body string
		length     int // Content-Length sent; past len(body) cuts the body short
		want       string
	}{
		{"fail/not JSON", "<html>proxy</html>", 0, "the answer is not JSON"},
		{"fail/cut short", `{"certificate":"-----BEGIN`, 4096, "reading the answer: unexpected EOF"},
		{"fail/no chain", `{"certificate":"x","chain":[]}`, 0, "no certificate or no chain"},
		{"fail/no certificate", `{"chain":["x"]}`, 0, "no certificate or no chain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := len(tc.body)
				if tc.length > 0 {
					n = tc.length
				}
				w.Header().Set("Content-Length", fmt.Sprint(n))
				w.WriteHeader(http.StatusCreated)
				io.WriteString(w, tc.body)
			}))
			defer fake.Close()
			roots := x509.NewCertPool()
			roots.AddCert(fake.Certificate())
			crt, keyFile, iss := issueFiles(t, run, "bad.svc.internal", 0)
			before, _ := os.ReadFile(crt)
			src, err := pkidclient.New(context.Background(), pkidclient.Options{CAURL: fake.URL, Roots: roots, CertFile: crt, KeyFile: keyFile})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if _, err := src.Renew(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Renew: %v, want %q", err, tc.want)
			}
			if after, _ := os.ReadFile(crt); string(after) != string(before) || ca.SerialString(src.Certificate().SerialNumber) != iss.Record.Serial {
				t.Fatal("a failed renewal changed the certificate")
			}
		})
	}
}

// TestSleepUntil: it returns at once for a time past, when the wall clock
// reaches the time (a monotonic reading on at changes nothing), and with
// ctx's error when ctx ends first. (What it is for, a suspend that stops
// the monotonic clock, cannot be staged in a test.)
func TestSleepUntil(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	if err := pkidclient.SleepUntil(ctx, start.Add(-time.Hour)); err != nil || time.Since(start) > time.Second {
		t.Fatalf("past: %v after %s", err, time.Since(start))
	}
	at := time.Now().Add(150 * time.Millisecond)
	if err := pkidclient.SleepUntil(ctx, at); err != nil || time.Now().Before(at) {
		t.Fatalf("returned %v at %s, before %s", err, time.Now(), at)
	}
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := pkidclient.SleepUntil(cctx, time.Now().Add(time.Hour)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ctx ended: %v", err)
	}
}

// TestRenewalWaitsForTheCAClock: the CA's clock ran an hour ahead when it
// signed a service's certificate, so the certificate is not valid yet for
// anyone with a right clock. The Source does not wait two thirds of its
// life to renew, nor renew while the CA's clock is still ahead (that
// would bring another certificate not valid yet): it asks the CA's clock
// (one GET, no certificate) until it agrees, then renews at once, and
// the new certificate is valid now.
func TestRenewalWaitsForTheCAClock(t *testing.T) {
	clk := ca.NewFakeClock(time.Now())
	run, roots := startPKIDOn(t, clk)
	clk.Step(time.Hour)
	crt, key, _ := issueFiles(t, run, "ahead.svc.internal", 0)
	var renewals atomic.Int32
	var logBuf testutil.SyncBuffer
	src, err := pkidclient.New(context.Background(), pkidclient.Options{CAURL: "https://" + run.HTTPSAddr, Roots: roots, CertFile: crt, KeyFile: key,
		ClockRecheck: 20 * time.Millisecond, Log: slog.New(slog.NewTextHandler(&logBuf, nil)),
		OnRenew: func(*x509.Certificate) { renewals.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for deadline := time.Now().Add(testutil.DutyWait); !strings.Contains(logBuf.String(), "ahead of this one: a certificate renewed now would not be valid yet"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the Source did not ask the CA's clock:\n%s", logBuf.String())
		}
	}
	time.Sleep(200 * time.Millisecond)
	if n := renewals.Load(); n != 0 {
		t.Fatalf("renewed %d times while the CA's clock was an hour ahead", n)
	}
	clk.Step(-time.Hour) // NTP sets the CA's clock right
	for deadline := time.Now().Add(testutil.DutyWait); renewals.Load() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not renewed after the CA's clock was set right:\n%s", logBuf.String())
		}
	}
	if c := src.Certificate(); c.NotBefore.After(time.Now()) {
		t.Fatalf("the renewed certificate is valid from %s", c.NotBefore)
	}
}
