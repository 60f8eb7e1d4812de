package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TestBenchStepCA: what the stepca-sign mode sends is what step-ca's JWK
// provisioner accepts — each request's token verifies under the provisioner
// entry --stepca-provisioner prints (key ID included), names the CSR's name,
// is for /1.0/sign, valid now, and never repeats its ID. The server here
// checks the tokens as step-ca does; scripts/vs-stepca.sh runs the real
// step-ca, which a test cannot build offline.
func TestBenchStepCA(t *testing.T) {
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "provisioner.pem")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := benchCmd()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--stepca-provisioner", "--stepca-key", keyPath})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	var prov struct {
		Type, Name string
		Key        jose.JSONWebKey
	}
	if err := json.Unmarshal(out.Bytes(), &prov); err != nil {
		t.Fatalf("provisioner %q: %v", out.String(), err)
	}
	if prov.Type != "JWK" || prov.Name != stepcaProvisioner || prov.Key.KeyID == "" || !prov.Key.IsPublic() {
		t.Fatalf("provisioner %s", out.String())
	}

	var mu sync.Mutex
	seen := map[string]bool{}
	var refusals []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse := func(why string) {
			mu.Lock()
			refusals = append(refusals, why)
			mu.Unlock()
			http.Error(w, why, http.StatusUnauthorized)
		}
		var body struct{ CSR, OTT string }
		if r.URL.Path != "/1.0/sign" || json.NewDecoder(r.Body).Decode(&body) != nil {
			refuse("not a /1.0/sign request")
			return
		}
		block, _ := pem.Decode([]byte(body.CSR))
		if block == nil {
			refuse("no CSR PEM")
			return
		}
		csr, err := x509.ParseCertificateRequest(block.Bytes)
		if err != nil || csr.CheckSignature() != nil {
			refuse("bad CSR")
			return
		}
		tok, err := jwt.ParseSigned(body.OTT, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil || tok.Headers[0].KeyID != prov.Key.KeyID {
			refuse("token not ES256 or wrong kid")
			return
		}
		var claims jwt.Claims
		var extra struct {
			SANs []string `json:"sans"`
		}
		if err := tok.Claims(prov.Key, &claims, &extra); err != nil {
			refuse("token signature: " + err.Error())
			return
		}
		if err := claims.ValidateWithLeeway(jwt.Expected{Issuer: stepcaProvisioner, AnyAudience: jwt.Audience{"https://" + r.Host + "/1.0/sign"}, Time: time.Now()}, time.Minute); err != nil {
			refuse("token claims: " + err.Error())
			return
		}
		if claims.Subject != csr.Subject.CommonName || len(extra.SANs) != 1 || extra.SANs[0] != csr.Subject.CommonName {
			refuse("token names " + claims.Subject + " " + strings.Join(extra.SANs, ",") + ", CSR " + csr.Subject.CommonName)
			return
		}
		mu.Lock()
		reused := seen[claims.ID]
		seen[claims.ID] = true
		mu.Unlock()
		if claims.ID == "" || reused {
			refuse("token ID missing or used twice")
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	rootPath := filepath.Join(dir, "root.pem")
	os.WriteFile(rootPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)

	r, err := runBench(t.Context(), &benchFlags{mode: "stepca-sign", caURL: srv.URL, root: rootPath, stepcaKey: keyPath, keyType: "ec-p256", concurrency: 4, count: 40})
	if err != nil {
		t.Fatal(err)
	}
	if r.OK != 40 || len(seen) != 40 {
		t.Fatalf("ok %d of 40, %d distinct tokens; refusals %v", r.OK, len(seen), refusals)
	}

	// Without a usable key the mode refuses to start.
	for _, f := range []*benchFlags{
		{mode: "stepca-sign", caURL: srv.URL, concurrency: 1, count: 1},
		{mode: "stepca-sign", caURL: srv.URL, stepcaKey: rootPath, concurrency: 1, count: 1},
	} {
		if _, err := runBench(t.Context(), f); err == nil {
			t.Fatalf("--stepca-key %q: ran", f.stepcaKey)
		}
	}
}
