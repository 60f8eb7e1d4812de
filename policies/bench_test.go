package policies

import (
	"net/netip"
	"testing"
)

func BenchmarkEvaluate(b *testing.B) {
	r := testRole()
	req := &Request{CommonName: "svc.internal", DNSNames: []string{"svc.internal", "a.svc.internal"}, IPAddresses: []netip.Addr{netip.MustParseAddr("127.0.0.2")}, PublicKey: p256}
	for b.Loop() {
		if _, err := Evaluate(r, req); err != nil {
			b.Fatal(err)
		}
	}
}
