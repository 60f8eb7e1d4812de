package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
)

type benchFlags struct {
	mode, caURL, root, token, role, keyType, format, ocspURL, http01 string
	dnsListen, acmeDomain, stepcaKey                                 string
	concurrency, count, serverPID                                    int
	http2                                                            bool
	// proto is the protocol the server's answers came in (set by the
	// clients as they run, read for the result).
	proto atomic.Pointer[string]
}

// benchResult is one run's figures.
type benchResult struct {
	Mode        string         `json:"mode"`
	KeyType     string         `json:"key_type"`
	Concurrency int            `json:"concurrency"`
	Count       int            `json:"count"`
	OK          int            `json:"ok"`
	Errors      map[string]int `json:"errors,omitempty"`
	Seconds     float64        `json:"seconds"`
	PerSecond   float64        `json:"per_second"`
	P50, P90    float64        // milliseconds
	P99, Max    float64
	ClientCPUms float64 `json:"client_cpu_ms_per_op"`
	ServerCPUms float64 `json:"server_cpu_ms_per_op,omitempty"`
	// ServerKernelShare is the part of the server's CPU time spent in the
	// kernel (system time in /proc): syscalls, the loopback TCP stack,
	// interrupts. On a virtual machine that makes every kernel entry costly
	// it is where much of the plumbing's time goes, which a Go profile
	// shows only as time in Syscall6.
	ServerKernelShare float64 `json:"server_kernel_share,omitempty"`
	// Protocol is what the server answered in: HTTP/1.1, or HTTP/2.0 when
	// --http2 offered it over TLS and the server took it.
	Protocol string `json:"protocol,omitempty"`
	// CryptoBound is `--mode crypto`'s rate for this key type on this
	// machine, and Fraction this run's share of it.
	CryptoBound float64 `json:"crypto_bound_per_second,omitempty"`
	Fraction    float64 `json:"fraction_of_crypto_bound,omitempty"`
	// CSRCheckUs and CreateUs split `--mode crypto`'s work per certificate
	// (µs on one core): parsing and verifying the CSR, and
	// x509.CreateCertificate, which signs and then verifies its own
	// signature. They are the two figures issue #8 gives for its reference
	// machine, so a reader can tell how this machine's crypto compares.
	CSRCheckUs float64 `json:"csr_check_us,omitempty"`
	CreateUs   float64 `json:"create_certificate_us,omitempty"`
}

func benchCmd() *cobra.Command {
	var f benchFlags
	var printProvisioner bool
	c := &cobra.Command{
		Use:   "bench --mode sign|issue|acme|renew|ocsp|crypto|stepca-sign",
		Short: "load-test a running pkid (or measure the crypto bound in-process)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if printProvisioner {
				if f.stepcaKey == "" {
					return usagef("--stepca-provisioner needs --stepca-key")
				}
				j, err := stepcaProvisionerJSON(f.stepcaKey)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(c.OutOrStdout(), "%s\n", j)
				return err
			}
			r, err := runBench(c.Context(), &f)
			if err != nil {
				return err
			}
			return printBench(c.OutOrStdout(), f.format, r)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.mode, "mode", "sign", "sign, issue, acme, renew, ocsp, crypto, or stepca-sign (step-ca's /1.0/sign, for comparison)")
	fl.StringVar(&f.caURL, "ca-url", "", "pkid HTTPS base URL")
	fl.StringVar(&f.root, "root", "", "root certificate (default $PKID_HOME/roots.pem)")
	fl.StringVar(&f.token, "token", "", "API token with the role (sign, issue, renew, ocsp)")
	fl.StringVar(&f.role, "role", "default", "role")
	fl.StringVar(&f.keyType, "key-type", "ec-p256", "key type of the CSRs (crypto: of the CA)")
	fl.IntVarP(&f.concurrency, "concurrency", "c", 32, "concurrent clients")
	fl.IntVarP(&f.count, "count", "n", 2000, "operations")
	fl.IntVar(&f.serverPID, "server-pid", 0, "pid of the pkid server, to report its CPU time per operation")
	fl.StringVar(&f.format, "format", "text", "text, json or md (one table row)")
	fl.StringVar(&f.ocspURL, "ocsp-url", "", "OCSP URL (default: the caIssuers/OCSP pointer of an issued certificate)")
	fl.StringVar(&f.http01, "http01-listen", "127.0.0.1:80", "acme mode: where to answer http-01 (the server's acme.http01_port)")
	fl.StringVar(&f.dnsListen, "dns-listen", "", "acme mode: run a stub resolver here (point the server's acme.resolver at it) that maps every name to the http-01 host, and order DNS names; without it orders are for the IP 127.0.0.1")
	fl.StringVar(&f.acmeDomain, "acme-domain", "bench.internal", "acme mode with --dns-listen: orders are for o<N>.<this domain>")
	fl.StringVar(&f.stepcaKey, "stepca-key", "", "stepca-sign mode: the P-256 key (PEM) of the JWK provisioner that signs the one-time tokens")
	fl.BoolVar(&printProvisioner, "stepca-provisioner", false, "print the provisioner entry for step-ca's ca.json that trusts --stepca-key, and exit")
	fl.BoolVar(&f.http2, "http2", false, "offer HTTP/2 over TLS, as Go clients (lego, cert-manager, Caddy) and curl do by default (pkid answers in HTTP/1.1; the JSON result says which); the mode is reported as <mode>-h2")
	return c
}

// op is one unit of load; it returns an error kind ("" for success).
type op func(ctx context.Context, worker, i int) error

// benchClient is one keep-alive client per worker, as a fleet of separate
// clients would be: HTTP/1.1, or offering HTTP/2 too with --http2.
func benchClient(f *benchFlags, roots *x509.CertPool, certs []tls.Certificate) *http.Client {
	t := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots, Certificates: certs, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 4, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	if f.http2 {
		t.TLSNextProto, t.ForceAttemptHTTP2 = nil, true
	}
	return &http.Client{Timeout: 60 * time.Second, Transport: protoRecorder{t, &f.proto}}
}

// protoRecorder notes the protocol of the answers, so a run says what it
// measured.
type protoRecorder struct {
	rt   http.RoundTripper
	seen *atomic.Pointer[string]
}

func (p protoRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := p.rt.RoundTrip(r)
	if err == nil && p.seen.Load() == nil {
		proto := resp.Proto
		p.seen.Store(&proto)
	}
	return resp, err
}

func loadRoots(path string) (*x509.CertPool, error) {
	if path == "" {
		path = defaultRootsPath()
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("%s holds no certificate", path)
	}
	return p, nil
}

func runBench(ctx context.Context, f *benchFlags) (*benchResult, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if f.concurrency < 1 || f.count < 1 {
		return nil, usagef("--concurrency and --count must be positive")
	}
	var prepare func(context.Context, *benchFlags) (op, error)
	switch f.mode {
	case "crypto":
		return benchCrypto(f)
	case "sign":
		prepare = prepareSign
	case "issue":
		prepare = prepareIssue
	case "renew":
		prepare = prepareRenew
	case "ocsp":
		prepare = prepareOCSP
	case "acme":
		prepare = prepareACME
	case "stepca-sign":
		if f.stepcaKey == "" {
			return nil, usagef("--mode stepca-sign needs --stepca-key")
		}
		prepare = prepareStepCA
	default:
		return nil, usagef("--mode %q: want sign, issue, acme, renew, ocsp, crypto or stepca-sign", f.mode)
	}
	if f.caURL == "" {
		return nil, usagef("--ca-url is required")
	}
	f.caURL = strings.TrimSuffix(f.caURL, "/")
	do, err := prepare(ctx, f)
	if err != nil {
		return nil, err
	}
	r := measure(ctx, f, do)
	if bound, err := benchCrypto(&benchFlags{keyType: f.keyType, count: 4000, concurrency: runtime.NumCPU()}); err == nil && f.mode != "ocsp" {
		r.CryptoBound = bound.PerSecond
		r.Fraction = r.PerSecond / bound.PerSecond
	}
	return r, nil
}

// procCPU is a process's CPU time so far, from /proc/<pid>/stat.
type procCPU struct {
	user, system time.Duration
}

// cpuOf reads a process's user and system CPU time from /proc (clock ticks
// of 1/100 s, the Linux default USER_HZ).
func cpuOf(pid int) (procCPU, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procCPU{}, err
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return procCPU{}, errors.New("malformed /proc stat")
	}
	fields := strings.Fields(s[i+2:])
	if len(fields) < 13 {
		return procCPU{}, errors.New("short /proc stat")
	}
	u, err1 := strconv.ParseInt(fields[11], 10, 64)
	st, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return procCPU{}, fmt.Errorf("/proc stat times: %w", err)
	}
	const tick = 10 * time.Millisecond
	return procCPU{user: time.Duration(u) * tick, system: time.Duration(st) * tick}, nil
}

func measure(ctx context.Context, f *benchFlags, do op) *benchResult {
	lat := make([]time.Duration, f.count)
	errKinds := map[string]int{}
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	serverBefore, serr := cpuOf(f.serverPID)
	selfBefore := cpuSelf()
	start := time.Now()
	for w := range f.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= f.count {
					return
				}
				t0 := time.Now()
				err := do(ctx, w, i)
				lat[i] = time.Since(t0)
				if err != nil {
					mu.Lock()
					errKinds[errKind(err)]++
					mu.Unlock()
					lat[i] = -1
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	mode := f.mode
	if mode == "acme" && f.dnsListen != "" {
		mode = "acme-dns" // DNS names, resolved by the server through the stub
	}
	if f.http2 {
		mode += "-h2"
	}
	r := &benchResult{Mode: mode, KeyType: f.keyType, Concurrency: f.concurrency, Count: f.count, Seconds: elapsed.Seconds()}
	if p := f.proto.Load(); p != nil {
		r.Protocol = *p
	}
	ok := slices.DeleteFunc(lat, func(d time.Duration) bool { return d < 0 })
	slices.Sort(ok)
	r.OK = len(ok)
	if len(errKinds) > 0 {
		r.Errors = errKinds
	}
	r.PerSecond = float64(r.OK) / elapsed.Seconds()
	pct := func(p float64) float64 {
		if len(ok) == 0 {
			return 0
		}
		return float64(ok[min(len(ok)-1, int(float64(len(ok))*p))]) / 1e6
	}
	r.P50, r.P90, r.P99 = pct(0.50), pct(0.90), pct(0.99)
	if len(ok) > 0 {
		r.Max = float64(ok[len(ok)-1]) / 1e6
	}
	r.ClientCPUms = float64(cpuSelf()-selfBefore) / 1e6 / float64(f.count)
	if f.serverPID > 0 && serr == nil {
		if after, err := cpuOf(f.serverPID); err == nil {
			user, system := after.user-serverBefore.user, after.system-serverBefore.system
			r.ServerCPUms = float64(user+system) / 1e6 / float64(f.count)
			if user+system > 0 {
				r.ServerKernelShare = float64(system) / float64(user+system)
			}
		}
	}
	return r
}

type kindError struct {
	kind string
	err  error
}

func (k kindError) Error() string { return k.kind + ": " + k.err.Error() }

func errKind(err error) string {
	var k kindError
	if errors.As(err, &k) {
		return k.kind
	}
	return "transport"
}

// expect reads resp and returns its body when the status is want (201 by
// default).
func expect(resp *http.Response, err error, wantStatus ...int) ([]byte, error) {
	want := http.StatusCreated
	if len(wantStatus) > 0 {
		want = wantStatus[0]
	}
	if err != nil {
		return nil, kindError{"transport", err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, kindError{"transport", err}
	}
	if resp.StatusCode != want {
		return nil, kindError{"http-" + strconv.Itoa(resp.StatusCode), errors.New(strings.TrimSpace(string(b)))}
	}
	return b, nil
}

func printBench(w io.Writer, format string, r *benchResult) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "md":
		frac, server, kernel := "", "", ""
		if r.Fraction > 0 {
			frac = fmt.Sprintf("%.0f%%", 100*r.Fraction)
		}
		if r.ServerCPUms > 0 {
			server = fmt.Sprintf("%.3f", r.ServerCPUms)
			kernel = fmt.Sprintf("%.0f%%", 100*r.ServerKernelShare)
		}
		// The kernel share comes last, so scripts that read the columns
		// before it by position keep working.
		_, err := fmt.Fprintf(w, "| %s | %s | %d | %d | %.0f/s | %.1f | %.1f | %.1f | %.1f | %s | %s | %d | %s |\n",
			r.Mode, r.KeyType, r.Concurrency, r.Count, r.PerSecond, r.P50, r.P90, r.P99, r.Max, server, frac, r.Count-r.OK, kernel)
		return err
	}
	fmt.Fprintf(w, "mode %s (%s), %d clients, %d ops: %d ok in %.2fs = %.0f/s\n", r.Mode, r.KeyType, r.Concurrency, r.Count, r.OK, r.Seconds, r.PerSecond)
	fmt.Fprintf(w, "latency ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", r.P50, r.P90, r.P99, r.Max)
	fmt.Fprintf(w, "client CPU %.3f ms/op", r.ClientCPUms)
	if r.ServerCPUms > 0 {
		fmt.Fprintf(w, ", server CPU %.3f ms/op (%.0f%% of it in the kernel)", r.ServerCPUms, 100*r.ServerKernelShare)
	}
	fmt.Fprintln(w)
	if r.CSRCheckUs > 0 {
		fmt.Fprintf(w, "per certificate on one core: CSR parse + verify %.1f µs, x509.CreateCertificate %.1f µs\n", r.CSRCheckUs, r.CreateUs)
	}
	if r.CryptoBound > 0 {
		fmt.Fprintf(w, "crypto bound %.0f/s on %d cores: this run is %.0f%% of it\n", r.CryptoBound, runtime.NumCPU(), 100*r.Fraction)
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(w, "errors: %v\n", r.Errors)
	}
	return nil
}
