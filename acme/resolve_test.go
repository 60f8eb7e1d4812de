package acme

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"pkid/internal/testutil"
)

// flakyDNS drops the first UDP question about each name, marks UDP answers
// to TXT questions truncated (the full answer comes over TCP), answers
// NXDOMAIN below "nx.", SERVFAIL to A below "sf." (AAAA is empty there),
// only AAAA below "v6.", and answers A through a CNAME otherwise.
type flakyDNS struct {
	mu   sync.Mutex
	seen map[string]int // "udp A name." -> times asked
}

func (f *flakyDNS) asked(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen[key]
}

func (f *flakyDNS) serve(w dns.ResponseWriter, q *dns.Msg) {
	qq := q.Question[0]
	network := w.RemoteAddr().Network()
	f.mu.Lock()
	key := network + " " + dns.TypeToString[qq.Qtype] + " " + qq.Name
	f.seen[key]++
	n := f.seen[key]
	f.mu.Unlock()
	if network == "udp" && n == 1 && qq.Qtype == dns.TypeA {
		return // lost
	}
	m := new(dns.Msg)
	m.SetReply(q)
	switch {
	case strings.HasSuffix(qq.Name, ".nx."):
		m.Rcode = dns.RcodeNameError
	case strings.HasSuffix(qq.Name, ".sf.") && qq.Qtype == dns.TypeA:
		m.Rcode = dns.RcodeServerFailure
	case strings.HasSuffix(qq.Name, ".v6.") && qq.Qtype == dns.TypeAAAA:
		m.Answer = append(m.Answer, &dns.AAAA{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET}, AAAA: net.ParseIP("2001:db8::1")})
	case strings.HasSuffix(qq.Name, ".v6."):
		// no A records
	case qq.Qtype == dns.TypeTXT && network == "udp":
		m.Truncated = true
	case qq.Qtype == dns.TypeTXT:
		m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{"part1", "part2"}})
	case qq.Qtype == dns.TypeA:
		m.Answer = append(m.Answer,
			&dns.CNAME{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET}, Target: "target.example."},
			&dns.A{Hdr: dns.RR_Header{Name: "target.example.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.IPv4(192, 0, 2, 1)})
	}
	w.WriteMsg(m)
}

// TestResolverAsksTheServer: a lost datagram is asked again, a truncated
// answer is asked again over TCP, a CNAME's addresses are the name's,
// NXDOMAIN and a SERVFAIL beside an empty AAAA are errors naming the
// server, and names go out rooted.
func TestResolverAsksTheServer(t *testing.T) {
	pc, l := testutil.ListenDNS(t)
	f := &flakyDNS{seen: map[string]int{}}
	udp, tcp := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(f.serve)}, &dns.Server{Listener: l, Handler: dns.HandlerFunc(f.serve)}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	defer udp.Shutdown()
	defer tcp.Shutdown()
	r := &Resolver{Server: pc.LocalAddr().String(), timeout: 200 * time.Millisecond}
	ctx := context.Background()

	addrs, err := r.LookupIP(ctx, "Svc.Internal")
	if err != nil || !slices.Equal(addrs, []netip.Addr{netip.MustParseAddr("192.0.2.1")}) {
		t.Fatalf("ok/after a lost datagram, through a CNAME: %v %v", addrs, err)
	}
	if n := f.asked("udp A svc.internal."); n != 2 {
		t.Fatalf("A asked %d times over UDP, want 2 (lost, then answered)", n)
	}
	txts, err := r.LookupTXT(ctx, "_acme-challenge.svc.internal")
	if err != nil || !slices.Equal(txts, []string{"part1part2"}) {
		t.Fatalf("ok/truncated, then over TCP: %q %v", txts, err)
	}
	if n := f.asked("tcp TXT _acme-challenge.svc.internal."); n != 1 {
		t.Fatalf("TXT asked %d times over TCP, want 1", n)
	}
	if addrs, err := r.LookupIP(ctx, "host.v6"); err != nil || !slices.Equal(addrs, []netip.Addr{netip.MustParseAddr("2001:db8::1")}) {
		t.Fatalf("ok/AAAA only: %v %v", addrs, err)
	}
	if _, err := r.LookupIP(ctx, "gone.nx"); err == nil || !strings.Contains(err.Error(), "NXDOMAIN from "+r.Server) {
		t.Fatalf("fail/NXDOMAIN: %v", err)
	}
	if _, err := r.LookupIP(ctx, "broken.sf"); err == nil || !strings.Contains(err.Error(), "SERVFAIL from "+r.Server) {
		t.Fatalf("fail/SERVFAIL for A, nothing for AAAA: %v", err)
	}
}
