package acme

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"
)

// HTTPValidator validates http-01 (RFC 8555 §8.3) by connecting to the
// identifier's address on a fixed port; redirects are followed only to the
// same port over http or to the TLS port over https.
type HTTPValidator struct {
	Resolver *Resolver
	HTTPPort int
	TLSPort  int
}

func (v *HTTPValidator) client(c Challenge) *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		ips, err := v.Resolver.LookupIP(ctx, host)
		if err != nil {
			return nil, dnsProblem(err.Error())
		}
		return dialFirst(ctx, host, ips, mustPort(port), validationDialer().DialContext)
	}
	return &http.Client{
		Timeout: validationTimeout,
		Transport: &http.Transport{
			DialContext:           dial,
			DisableKeepAlives:     true,
			ResponseHeaderTimeout: 10 * time.Second,
			// A redirect to https is fetched without verifying the
			// certificate, as RFC 8555 §8.3 says.
			TLSClientConfig: insecureTLS(),
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("more than 10 redirects")
			}
			port := req.URL.Port()
			switch {
			case req.URL.Scheme == "http" && (port == "" || port == strconv.Itoa(v.HTTPPort)) && v.HTTPPort == 80:
			case req.URL.Scheme == "http" && port == strconv.Itoa(v.HTTPPort):
			case req.URL.Scheme == "https" && (port == "" && v.TLSPort == 443 || port == strconv.Itoa(v.TLSPort)):
			default:
				return fmt.Errorf("redirect to %s is not allowed: only port %d (http) or %d (https)", req.URL.Redacted(), v.HTTPPort, v.TLSPort)
			}
			if c.RedirectTo == nil {
				return fmt.Errorf("redirect to %s is not allowed: this validation follows none", req.URL.Redacted())
			}
			if err := c.RedirectTo(req.URL.Hostname()); err != nil {
				return fmt.Errorf("redirect to %s is not allowed: %w", req.URL.Redacted(), err)
			}
			return nil
		},
	}
}

func mustPort(p string) uint16 {
	n, _ := strconv.Atoi(p)
	return uint16(n)
}

// Supports implements Validator.
func (v *HTTPValidator) Supports(t string) bool { return t == "http-01" }

// Validate implements Validator.
func (v *HTTPValidator) Validate(ctx context.Context, c Challenge) error {
	host := c.Identifier.Value
	if c.Identifier.Type == "ip" {
		if a, err := netip.ParseAddr(host); err == nil && a.Is6() {
			host = "[" + host + "]"
		}
	}
	u := &url.URL{Scheme: "http", Host: host + ":" + strconv.Itoa(v.HTTPPort), Path: "/.well-known/acme-challenge/" + c.Token}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return malformed(err.Error())
	}
	req.Host = hostHeader(c.Identifier.Value, v.HTTPPort)
	req.Header.Set("User-Agent", "pkid-validator")
	resp, err := v.client(c).Do(req)
	if err != nil {
		var p *Problem
		if errors.As(err, &p) {
			return p
		}
		return connectionProblem(fmt.Sprintf("fetching %s: %v", u, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return unauthorized(fmt.Sprintf("fetching %s: HTTP %d, want 200 with the key authorization", u, resp.StatusCode))
	}
	// Read a little more than a key authorization, to notice a wrong
	// answer without reading an unbounded body.
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return connectionProblem(fmt.Sprintf("reading %s: %v", u, err))
	}
	// The detail describes a wrong answer without quoting it: a redirect or
	// a DNS record may have pointed the CA at a host its requester cannot
	// read, and the problem document would hand them its page.
	if got := bytes.TrimRight(body, " \t\r\n"); string(got) != c.KeyAuth {
		size := fmt.Sprintf("%d bytes", len(got))
		if len(body) == maxAnswer {
			size = fmt.Sprintf("%d bytes or more", maxAnswer)
		}
		return incorrectResponse(fmt.Sprintf("%s answered %s (%s) that are not the key authorization; want %q", resp.Request.URL.Redacted(), size, contentType(resp), c.KeyAuth))
	}
	return nil
}

// maxAnswer bounds what is read of an http-01 answer: a key authorization
// is under 200 bytes.
const maxAnswer = 1024

// hostHeader is the Host of an http-01 request for name on port: the port
// only when it is not 80, and an IPv6 address in brackets (RFC 8738 §6,
// RFC 9110 §7.2), which net.JoinHostPort adds only along with a port.
func hostHeader(name string, port int) string {
	if port != 80 {
		return net.JoinHostPort(name, strconv.Itoa(port))
	}
	if a, err := netip.ParseAddr(name); err == nil && a.Is6() {
		return "[" + name + "]"
	}
	return name
}

func contentType(resp *http.Response) string {
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		return truncate(ct, 64)
	}
	return "no Content-Type"
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
