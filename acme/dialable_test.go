package acme

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestCheckDialable(t *testing.T) {
	for addr, refused := range map[string]string{
		"127.0.0.1":              "",
		"10.1.2.3":               "",
		"192.168.0.10":           "",
		"fd00:ec2::254":          "", // a ULA: internal networks use them
		"::1":                    "",
		"169.254.169.254":        "link-local",
		"::ffff:169.254.169.254": "link-local",
		"fe80::1":                "link-local",
		"0.0.0.0":                "unspecified",
		"::":                     "unspecified",
		"224.0.0.1":              "multicast",
		"ff02::1":                "multicast",
		"255.255.255.255":        "broadcast",
	} {
		err := checkDialable("h.internal", netip.MustParseAddr(addr))
		if refused == "" {
			if err != nil {
				t.Errorf("%s refused: %v", addr, err)
			}
			continue
		}
		p, ok := err.(*Problem)
		if !ok || p.Type != ns+"connection" || !strings.Contains(p.Detail, refused) || !strings.Contains(p.Detail, "h.internal resolves to") {
			t.Errorf("%s: %v, want a connection problem naming %s", addr, err, refused)
		}
	}
}

// TestDialFirst: the first reachable address is dialled; the error is the
// last dial's, or the refusal when no address could be dialled at all.
func TestDialFirst(t *testing.T) {
	metadata, local, other := netip.MustParseAddr("169.254.169.254"), netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	var dialled []string
	dial := func(_ context.Context, _, addr string) (net.Conn, error) {
		dialled = append(dialled, addr)
		if addr == "127.0.0.2:80" {
			c, _ := net.Pipe()
			return c, nil
		}
		return nil, errors.New("connection refused")
	}
	for _, tc := range []struct {
		name    string
		addrs   []netip.Addr
		want    string // "" for a connection
		dialled []string
	}{
		{"ok/past a refused and a failed address", []netip.Addr{metadata, local, other}, "", []string{"127.0.0.1:80", "127.0.0.2:80"}},
		{"fail/only refused addresses", []netip.Addr{metadata}, "link-local", nil},
		{"fail/a refusal and a failed dial", []netip.Addr{local, metadata}, "connection refused", []string{"127.0.0.1:80"}},
		{"fail/no address", nil, "h.internal has no address", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dialled = nil
			conn, err := dialFirst(context.Background(), "h.internal", tc.addrs, 80, dial)
			if tc.want == "" {
				if err != nil || conn == nil {
					t.Fatalf("got %v", err)
				}
				conn.Close()
			} else if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if !slices.Equal(dialled, tc.dialled) {
				t.Fatalf("dialled %v, want %v", dialled, tc.dialled)
			}
		})
	}
}
