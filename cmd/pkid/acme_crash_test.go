package main_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	xacme "golang.org/x/crypto/acme"

	"pkid/internal/testutil"
)

// TestACMEFinalizeCrash: SIGKILL a real pkid serve while ACME finalizes
// are between their certificate's commit and their order's, then restart
// it on the same files. Every certificate that was committed must be
// handed over by its order (valid, downloadable), not stranded behind an
// order that reads processing and then invalid.
//
// The kill comes as soon as the first certificate of a burst of finalizes
// is listed; whether it lands between some finalize's two commits is a
// matter of milliseconds, so the test plays three rounds. Code that
// strands certificates fails nearly every round.
func TestACMEFinalizeCrash(t *testing.T) {
	d, https, _, h01 := initACMECA(t, map[string]string{})
	cfg := filepath.Join(d, "pkid.yaml")
	admin := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", cfg, "--role", "default", "--admin"))
	// Commits that wait for company keep a burst's writes in few, slower
	// groups: a wider gap between a finalize's two commits.
	env := []string{"PKID_COMMIT_LINGER=50ms"}
	s := serveEnv(t, d, https, env)

	publish, stop := testutil.HTTP01Responder(t, h01)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// committed lists the serials of the role's certificates.
	committed := func(s *server) map[string]bool {
		req, _ := http.NewRequest("GET", s.base+"/v1/certs?role=default&limit=1000", nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := s.client.Do(req)
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var list struct{ Items []struct{ Serial string } }
		json.NewDecoder(resp.Body).Decode(&list)
		out := map[string]bool{}
		for _, it := range list.Items {
			out[it.Serial] = true
		}
		return out
	}
	type order struct {
		c   *xacme.Client
		o   *xacme.Order
		csr []byte
	}
	// ready makes an account and an order for 127.0.0.1, validated.
	ready := func(s *server) order {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		c := &xacme.Client{Key: key, DirectoryURL: s.base + "/acme/default/directory", HTTPClient: s.client}
		if _, err := c.Register(ctx, &xacme.Account{}, xacme.AcceptTOS); err != nil {
			t.Fatalf("register: %v", err)
		}
		o, err := c.AuthorizeOrder(ctx, xacme.IPIDs("127.0.0.1"))
		if err != nil {
			t.Fatalf("order: %v", err)
		}
		testutil.SolveHTTP01(t, ctx, c, o, publish)
		if o, err = c.WaitOrder(ctx, o.URI); err != nil || o.Status != xacme.StatusReady {
			t.Fatalf("order not ready: %v", err)
		}
		leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}, leafKey)
		return order{c, o, csr}
	}

	const rounds, n = 3, 12
	for round := range rounds {
		before := committed(s)
		orders := make([]order, n)
		for i := range orders {
			orders[i] = ready(s)
		}
		// All finalize at once; the server dies once the first of their
		// certificates is committed.
		fctx, fcancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for _, o := range orders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o.c.CreateOrderCert(fctx, o.o.FinalizeURL, o.csr, false) // cut off by the kill
			}()
		}
		for deadline := time.Now().Add(20 * time.Second); len(committed(s)) == len(before); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no certificate committed:\n%s", round, s.logs())
			}
		}
		s.cmd.Process.Kill()
		<-s.exited
		fcancel() // the clients' retries would otherwise wait out their backoff
		wg.Wait()

		s = serveEnv(t, d, https, env)
		var fresh []string
		for sn := range committed(s) {
			if !before[sn] {
				fresh = append(fresh, sn)
			}
		}
		valid := map[string]bool{}
		for _, o := range orders {
			// The same account on a fresh client: the old one's nonces died
			// with the server, and a badNonce retry waits out a backoff.
			c := &xacme.Client{Key: o.c.Key, KID: o.c.KID, DirectoryURL: o.c.DirectoryURL, HTTPClient: s.client}
			cur, err := c.GetOrder(ctx, o.o.URI)
			if err != nil {
				t.Fatalf("round %d: order after restart: %v", round, err)
			}
			switch cur.Status {
			case xacme.StatusValid:
				chain, err := c.FetchCert(ctx, cur.CertURL, false)
				if err != nil {
					t.Fatalf("round %d: certificate of a valid order: %v", round, err)
				}
				leaf, _ := x509.ParseCertificate(chain[0])
				valid[strings.ToLower(leaf.SerialNumber.Text(16))] = true
			case xacme.StatusProcessing, xacme.StatusReady: // not committed, or not begun
			default:
				t.Fatalf("round %d: order %s after restart", round, cur.Status)
			}
		}
		for _, sn := range fresh {
			if !valid[sn] {
				t.Fatalf("round %d: certificate %s was committed but its order does not hand it over (%d committed, %d orders valid)", round, sn, len(fresh), len(valid))
			}
		}
		if len(valid) != len(fresh) {
			t.Fatalf("round %d: %d orders valid, %d certificates committed", round, len(valid), len(fresh))
		}
		t.Logf("round %d: %d of %d finalizes committed before the kill; all handed over", round, len(fresh), n)
	}
}
