package testutil

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	xacme "golang.org/x/crypto/acme"
)

// HTTP01Responder serves http-01 key authorizations on addr (the CA's
// acme.http01_port) until stop is called: publish makes body the answer
// at path.
func HTTP01Responder(t testing.TB, addr string) (publish func(path, body string), stop func()) {
	t.Helper()
	var answers sync.Map
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v, ok := answers.Load(r.URL.Path); ok {
			w.Write([]byte(v.(string)))
			return
		}
		http.NotFound(w, r)
	})}
	go hs.Serve(l)
	return func(path, body string) { answers.Store(path, body) }, func() { hs.Close() }
}

// SolveHTTP01 answers every authorization of o over http-01 the way
// cert-manager's solver (golang.org/x/crypto/acme) does: publish the key
// authorization, Accept the challenge, then WaitAuthorization.
func SolveHTTP01(t testing.TB, ctx context.Context, c *xacme.Client, o *xacme.Order, publish func(path, body string)) {
	t.Helper()
	for _, u := range o.AuthzURLs {
		z, err := c.GetAuthorization(ctx, u)
		if err != nil {
			t.Fatalf("authorization: %v", err)
		}
		for _, ch := range z.Challenges {
			if ch.Type != "http-01" {
				continue
			}
			ka, err := c.HTTP01ChallengeResponse(ch.Token)
			if err != nil {
				t.Fatal(err)
			}
			publish(c.HTTP01ChallengePath(ch.Token), ka)
			if _, err := c.Accept(ctx, ch); err != nil {
				t.Fatalf("accept: %v", err)
			}
		}
		if _, err := c.WaitAuthorization(ctx, u); err != nil {
			t.Fatalf("wait authorization: %v", err)
		}
	}
}
