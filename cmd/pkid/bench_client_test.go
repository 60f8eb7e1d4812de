package main

import (
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestBenchClientProtocol: against a server that speaks HTTP/2, the bench's
// clients use it only with --http2, and the run records what was spoken
// (pkid itself answers HTTP/1.1 to both, so only a server like this one
// can tell whether --http2 offers anything).
func TestBenchClientProtocol(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	for _, tc := range []struct {
		http2 bool
		want  string
	}{{false, "HTTP/1.1"}, {true, "HTTP/2.0"}} {
		f := &benchFlags{http2: tc.http2}
		resp, err := benchClient(f, roots, nil).Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		recorded := ""
		if p := f.proto.Load(); p != nil {
			recorded = *p
		}
		if resp.Proto != tc.want || recorded != tc.want {
			t.Fatalf("--http2=%v: spoke %s, recorded %q; want %s", tc.http2, resp.Proto, recorded, tc.want)
		}
	}
}
