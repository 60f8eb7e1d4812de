package acme

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Resolver answers every validation lookup: static hosts first (acme.hosts,
// for development and tests), then a configured DNS server, else the
// system resolver. It never caches across attempts.
type Resolver struct {
	Hosts map[string]string
	// Server is "host:port" of a DNS server, or "" for the system resolver.
	Server string
}

func (r *Resolver) net() *net.Resolver {
	if r.Server == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		d := net.Dialer{Timeout: 5 * time.Second}
		return d.DialContext(ctx, network, r.Server)
	}}
}

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
	addrs, err := r.net().LookupNetIP(ctx, "ip", rooted(name))
	if err != nil {
		return nil, fmt.Errorf("lookup %s: %w", name, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("lookup %s: no addresses", name)
	}
	return addrs, nil
}

// LookupTXT returns the TXT records of name, through the configured server.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return r.net().LookupTXT(ctx, rooted(name))
}

// rooted writes name as an absolute name ("svc.internal."), so the resolver
// asks for exactly that name. A relative name is also tried under the
// host's search domains (resolv.conf's search list, or its hostname's
// domain) — in a Kubernetes pod, with ndots:5, even before the name itself
// — and a CA must validate the name requested, never
// svc.internal.default.svc.cluster.local.
func rooted(name string) string {
	if strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}
