package acme

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Resolver answers every validation lookup: static hosts first (acme.hosts,
// for development and tests), then a configured DNS server, else the
// system resolver. It never caches across attempts.
type Resolver struct {
	Hosts map[string]string
	// Server is "host:port" of a DNS server, or "" for the system resolver.
	// A configured server is asked directly, as Boulder asks its own:
	// nothing on the CA host (/etc/hosts, resolv.conf's search list or
	// options) changes what a name validates to.
	Server string
	// timeout, when set, replaces dnsTimeout (tests lose datagrams).
	timeout time.Duration
}

// dnsTimeout bounds one attempt at a question to the configured server,
// and dnsTries the attempts, as resolv.conf's timeout and attempts would.
const (
	dnsTimeout = 3 * time.Second
	dnsTries   = 3
)

// LookupIP returns the addresses of name.
func (r *Resolver) LookupIP(ctx context.Context, name string) ([]netip.Addr, error) {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if ip, ok := r.Hosts[name]; ok {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return nil, err
		}
		return []netip.Addr{a}, nil
	}
	if a, err := netip.ParseAddr(name); err == nil {
		return []netip.Addr{a}, nil // an IP identifier, or a redirect to an address
	}
	var addrs []netip.Addr
	var err error
	if r.Server != "" {
		addrs, err = r.askAddrs(ctx, rooted(name))
	} else {
		addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", rooted(name))
	}
	if err != nil {
		return nil, fmt.Errorf("lookup %s: %w", name, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("lookup %s: no A or AAAA records", name)
	}
	return addrs, nil
}

// LookupTXT returns the TXT records of name, each record's strings joined
// as one value.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	if r.Server == "" {
		return net.DefaultResolver.LookupTXT(ctx, rooted(name))
	}
	rrs, err := r.ask(ctx, rooted(name), dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range rrs {
		if t, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(t.Txt, ""))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no TXT records at %s (from %s)", name, r.Server)
	}
	return out, nil
}

// askAddrs asks for A and AAAA at once. With no address in either answer,
// a failed question (a timeout, SERVFAIL) is the error to report, A's first.
func (r *Resolver) askAddrs(ctx context.Context, name string) ([]netip.Addr, error) {
	type answer struct {
		rrs []dns.RR
		err error
	}
	aaaa := make(chan answer, 1)
	go func() {
		rrs, err := r.ask(ctx, name, dns.TypeAAAA)
		aaaa <- answer{rrs, err}
	}()
	rrs, errA := r.ask(ctx, name, dns.TypeA)
	six := <-aaaa
	var out []netip.Addr
	// A recursive server answers a CNAME chain with the records of its end;
	// every address record in the answer belongs to the name asked.
	for _, rr := range append(rrs, six.rrs...) {
		switch rr := rr.(type) {
		case *dns.A:
			if a, ok := netip.AddrFromSlice(rr.A.To4()); ok {
				out = append(out, a)
			}
		case *dns.AAAA:
			if a, ok := netip.AddrFromSlice(rr.AAAA.To16()); ok {
				out = append(out, a)
			}
		}
	}
	if len(out) == 0 {
		if errA != nil {
			return nil, errA
		}
		return nil, six.err
	}
	return out, nil
}

// ask puts one question to the configured server over UDP (asking again
// when no answer came in time: a datagram can be lost), again over TCP if
// the answer was truncated, and returns the answer section.
func (r *Resolver) ask(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.SetEdns0(4096, false)
	c := &dns.Client{Net: "udp", Timeout: dnsTimeout}
	if r.timeout > 0 {
		c.Timeout = r.timeout
	}
	var in *dns.Msg
	var err error
	for try := 0; try < dnsTries; try++ {
		in, _, err = c.ExchangeContext(ctx, q, r.Server)
		var ne net.Error
		if err == nil || ctx.Err() != nil || !errors.As(err, &ne) || !ne.Timeout() {
			break
		}
	}
	if err == nil && in.Truncated {
		c.Net = "tcp"
		in, _, err = c.ExchangeContext(ctx, q, r.Server)
	}
	typ := dns.TypeToString[qtype]
	if err != nil {
		return nil, fmt.Errorf("%s %s at %s: %w", typ, name, r.Server, err)
	}
	switch in.Rcode {
	case dns.RcodeSuccess:
		return in.Answer, nil
	case dns.RcodeNameError:
		return nil, fmt.Errorf("%s: no such name (NXDOMAIN from %s)", name, r.Server)
	default:
		return nil, fmt.Errorf("%s %s: %s from %s", typ, name, dns.RcodeToString[in.Rcode], r.Server)
	}
}

// rooted writes name as an absolute name ("svc.internal."), so the system
// resolver asks for exactly that name. A relative name is also tried under
// the host's search domains (resolv.conf's search list, or its hostname's
// domain) — in a Kubernetes pod, with ndots:5, even before the name itself
// — and a CA must validate the name requested, never
// svc.internal.default.svc.cluster.local.
func rooted(name string) string {
	if strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}
