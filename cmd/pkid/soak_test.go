package main_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"pkid/ca"
)

// TestCrashSoak: rounds of mixed load on one CA, each ended by SIGKILL at
// a random moment and followed by a restart on the same files. Sixteen
// clients sign, four revoke some of what they got, one reads the CRL, and
// one gets two certificates for each key it makes, then revokes the first
// for keyCompromise. After every restart: each certificate a client was
// given is recorded; each revocation a client was told of is recorded
// with its reason, and so is the keyCompromise of the second certificate
// of each pair whose first it was told of (one commit revokes both), all
// listed on the CRL within seconds; no serial was given out twice; no CRL
// number is below one seen before the kill. PKID_SOAK_ROUNDS (default 3)
// sets the rounds, for a longer soak than `make test` runs.
func TestCrashSoak(t *testing.T) {
	rounds := 3
	if v := os.Getenv("PKID_SOAK_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("PKID_SOAK_ROUNDS=%q: want a positive number", v)
		}
		rounds = n
	}
	d, https, plain := initCA(t)
	cfg := filepath.Join(d, "pkid.yaml")
	tok := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", cfg, "--role", "default", "--name", "soak"))
	admin := strings.TrimSpace(mustPKID(t, nil, "token", "create", "--config", cfg, "--role", "default", "--admin", "--name", "soak-admin"))
	issued := map[string]bool{}    // every serial a client was given
	revoked := map[string]string{} // serial -> reason a client was told of
	maxCRL := new(big.Int)         // the largest CRL number seen so far
	reasons := []string{"superseded", "cessationOfOperation", "affiliationChanged"}
	for round := range rounds {
		s := serve(t, d, https)
		l := &soakLoad{issued: map[string]bool{}, revoked: map[string]string{}, maxCRL: new(big.Int)}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		toRevoke := make(chan string, 4096)
		for i := range 16 {
			csr, _ := newCSR(t, fmt.Sprintf("soak%d-%d.internal", round, i))
			wg.Go(func() {
				for ctx.Err() == nil {
					sn, err := s.sign(ctx, tok, csr)
					if err != nil {
						continue
					}
					l.gave(t, sn)
					if rand.IntN(4) == 0 {
						select {
						case toRevoke <- sn:
						default:
						}
					}
				}
			})
		}
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-ctx.Done():
						return
					case sn := <-toRevoke:
						reason := reasons[rand.IntN(len(reasons))]
						if s.revokeAs(ctx, admin, sn, reason) == nil {
							l.told(sn, reason)
						}
					}
				}
			})
		}
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
				if err != nil {
					t.Error(err)
					return
				}
				var pair [2]string
				for i := range pair {
					csr := csrFor(t, key, fmt.Sprintf("pair%d-%d-%d.internal", round, n, i))
					if pair[i], err = s.sign(ctx, tok, csr); err != nil {
						break
					}
					l.gave(t, pair[i])
				}
				if err == nil && s.revokeAs(ctx, admin, pair[0], "keyCompromise") == nil {
					l.told(pair[0], "keyCompromise")
					l.toldSameKey(pair[1])
				}
			}
		})
		wg.Go(func() {
			for ctx.Err() == nil {
				if rl, err := fetchCRL(ctx, plain); err == nil {
					l.sawCRL(rl.Number)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
		// Kill it once certificates flow, at a random moment after.
		for deadline := time.Now().Add(20 * time.Second); l.count() < 20 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(time.Duration(rand.IntN(500)) * time.Millisecond)
		s.stop(t, syscall.SIGKILL)
		cancel()
		wg.Wait()
		if l.count() < 20 {
			t.Fatalf("round %d: only %d certificates before the kill", round, l.count())
		}
		for sn := range l.issued {
			if issued[sn] {
				t.Fatalf("round %d: serial %s given out twice", round, sn)
			}
			issued[sn] = true
		}
		for sn, reason := range l.revoked {
			revoked[sn] = reason
		}
		for _, sn := range l.sameKey {
			revoked[sn] = "keyCompromise"
		}
		if l.maxCRL.Cmp(maxCRL) > 0 {
			maxCRL = l.maxCRL
		}

		s = serve(t, d, https)
		for sn := range l.issued {
			s.record(t, sn) // fails the test if there is none
		}
		for sn, want := range revoked {
			if rec := s.record(t, sn); rec.Status != "revoked" || rec.Reason != want {
				t.Fatalf("round %d: %s was revoked (%s), or shares a key revoked for keyCompromise, before a kill; its record reads %s %q", round, sn, want, rec.Status, rec.Reason)
			}
		}
		var rl *x509.RevocationList
		await(t, fmt.Sprintf("round %d: a CRL listing all %d revocations", round, len(revoked)), func() bool {
			if rl = getCRL(t, plain); rl.Number.Cmp(maxCRL) < 0 {
				t.Fatalf("round %d: CRL number %s after the restart, below %s seen before it", round, rl.Number, maxCRL)
			}
			listed := map[string]bool{}
			for _, e := range rl.RevokedCertificateEntries {
				listed[ca.SerialString(e.SerialNumber)] = true
			}
			for sn := range revoked {
				if !listed[sn] {
					return false
				}
			}
			return true
		})
		maxCRL = rl.Number
		s.stop(t, syscall.SIGTERM)
		t.Logf("round %d: %d certificates and %d revocations (%d of them by a shared key) recorded across the kill; CRL number %s", round, len(l.issued), len(l.revoked)+len(l.sameKey), len(l.sameKey), rl.Number)
	}
}

// soakLoad is what the clients of one round were told.
type soakLoad struct {
	mu      sync.Mutex
	issued  map[string]bool
	revoked map[string]string
	// sameKey are the certificates revoked with another of their key
	// that a client was told was revoked for keyCompromise.
	sameKey []string
	maxCRL  *big.Int
}

func (l *soakLoad) gave(t *testing.T, sn string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.issued[sn] {
		t.Errorf("serial %s given out twice", sn)
	}
	l.issued[sn] = true
}

func (l *soakLoad) told(sn, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.revoked[sn] = reason
}

func (l *soakLoad) toldSameKey(sn string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sameKey = append(l.sameKey, sn)
}

// csrFor is a PEM CSR for name, signed by key.
func csrFor(t *testing.T, key *ecdsa.PrivateKey, name string) string {
	der, err := x509.CreateCertificateRequest(crand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}, DNSNames: []string{name}}, key)
	if err != nil {
		t.Error(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func (l *soakLoad) sawCRL(n *big.Int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n.Cmp(l.maxCRL) > 0 {
		l.maxCRL = n
	}
}

func (l *soakLoad) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.issued)
}

// fetchCRL reads the current CRL over plain HTTP as getCRL does, but
// returns its failure: the load's reader runs while the server is killed.
func fetchCRL(ctx context.Context, plain string) (*x509.RevocationList, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+plain+"/crl", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	der, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("CRL: HTTP %d, %v", resp.StatusCode, err)
	}
	return x509.ParseRevocationList(der)
}
