package acme_test

import (
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"pkid/internal/testutil"
)

// testDNS answers on one loopback port over UDP and TCP: TXT records the
// tests set (through a CNAME when delegated), NXDOMAIN for names with a
// label "nxdomain", A 169.254.169.254 for names with a label "linklocal",
// A 127.0.0.1 for anything else, so dns-01 and the CA's lookups never leave
// the machine.
type testDNS struct {
	addr string
	mu   sync.Mutex
	txt  map[string][]string // fqdn (lower case, trailing dot) -> values
	// cname delegates a name's TXT records to another name, as
	// _acme-challenge is often delegated to a zone an ACME client may
	// update (acme-dns); the answer holds the CNAME and the target's TXT
	// records, as a recursive resolver gives them.
	cname map[string]string
	// asked is every name queried, lower case, as it came in.
	asked []string
	udp   *dns.Server
	tcp   *dns.Server
}

func startDNS(tb testing.TB) *testDNS {
	pc, l := testutil.ListenDNS(tb)
	d := &testDNS{addr: pc.LocalAddr().String(), txt: map[string][]string{}, cname: map[string]string{}}
	h := dns.HandlerFunc(d.serve)
	d.udp = &dns.Server{PacketConn: pc, Handler: h}
	d.tcp = &dns.Server{Listener: l, Handler: h}
	go d.udp.ActivateAndServe()
	go d.tcp.ActivateAndServe()
	return d
}

func (d *testDNS) stop() {
	d.udp.Shutdown()
	d.tcp.Shutdown()
}

func (d *testDNS) set(name string, values ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.txt[dns.Fqdn(strings.ToLower(name))] = values
}

// delegate makes name a CNAME of target for TXT questions.
func (d *testDNS) delegate(name, target string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cname[dns.Fqdn(strings.ToLower(name))] = dns.Fqdn(strings.ToLower(target))
}

func (d *testDNS) add(name, value string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := dns.Fqdn(strings.ToLower(name))
	d.txt[n] = append(d.txt[n], value)
}

func (d *testDNS) remove(name, value string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := dns.Fqdn(strings.ToLower(name))
	var keep []string
	for _, v := range d.txt[n] {
		if v != value {
			keep = append(keep, v)
		}
	}
	d.txt[n] = keep
}

func (d *testDNS) serve(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	for _, q := range r.Question {
		name := strings.ToLower(q.Name)
		d.mu.Lock()
		d.asked = append(d.asked, name)
		d.mu.Unlock()
		if strings.Contains(name, ".nxdomain.") {
			m.Rcode = dns.RcodeNameError // names that do not exist, for refusals
			continue
		}
		switch q.Qtype {
		case dns.TypeTXT:
			d.mu.Lock()
			owner := q.Name
			if target, ok := d.cname[name]; ok {
				m.Answer = append(m.Answer, &dns.CNAME{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 0}, Target: target})
				name, owner = target, target
			}
			for _, v := range d.txt[name] {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 0}, Txt: []string{v}})
			}
			d.mu.Unlock()
		case dns.TypeA:
			a := net.IPv4(127, 0, 0, 1)
			if strings.Contains(name, ".linklocal.") {
				a = net.IPv4(169, 254, 169, 254) // where cloud metadata services answer
			}
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0}, A: a})
		}
	}
	w.WriteMsg(m)
}

// askedBelow returns the queried names that extend name with more labels on
// the right ("name.corp.example."): what a resolver asks when it expands a
// relative name with the host's search domains.
func (d *testDNS) askedBelow(name string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	prefix := dns.Fqdn(strings.ToLower(name))
	for _, a := range d.asked {
		if strings.HasPrefix(a, prefix) && a != prefix {
			out = append(out, a)
		}
	}
	return out
}

// askedNames returns every name queried so far.
func (d *testDNS) askedNames() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.asked)
}
