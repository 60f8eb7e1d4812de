package main

import (
	"fmt"
	"net"

	"github.com/miekg/dns"
)

// stubResolver stands in for the DNS that maps a fleet's names to its
// hosts, so the ACME bench can order DNS names and pkid resolves each one
// through its acme.resolver as it would in production: every A query is
// answered with ip, every other query with an empty NOERROR.
type stubResolver struct{ ip net.IP }

// startStubResolver serves at addr over UDP and TCP, answering with ip (an
// IPv4 address), for the life of the bench process.
func startStubResolver(addr string, ip net.IP) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("stub resolver %s (the server's acme.resolver): %w", addr, err)
	}
	l, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		return fmt.Errorf("stub resolver %s: %w", addr, err)
	}
	s := &stubResolver{ip: ip.To4()}
	go (&dns.Server{PacketConn: pc, Handler: s}).ActivateAndServe()
	go (&dns.Server{Listener: l, Handler: s}).ActivateAndServe()
	return nil
}

// ServeDNS implements dns.Handler.
func (s *stubResolver) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	for _, qq := range q.Question {
		if qq.Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0}, A: s.ip})
		}
	}
	w.WriteMsg(m)
}
