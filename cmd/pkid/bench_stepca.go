package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"go.step.sm/crypto/pemutil"
)

// Issue #8 states its targets against step-ca measured on a machine like
// ours, but a shared machine's speed moves by ±10–25% from hour to hour.
// The stepca-sign mode loads step-ca's /1.0/sign through the same clients,
// clock and /proc accounting as the sign mode, so that scripts/vs-stepca.sh
// can alternate the two servers and compare them in the same minutes.

// stepcaProvisioner is the name of the JWK provisioner the tokens are for.
const stepcaProvisioner = "pkid-bench"

// stepcaKey reads the provisioner's P-256 key (PEM, as openssl genpkey
// writes it) and its JWK, whose key ID is its RFC 7638 thumbprint as step
// makes it.
func stepcaKey(path string) (*ecdsa.PrivateKey, jose.JSONWebKey, error) {
	k, err := pemutil.Read(path)
	if err != nil {
		return nil, jose.JSONWebKey{}, fmt.Errorf("--stepca-key: %w", err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, jose.JSONWebKey{}, usagef("--stepca-key %s: want a P-256 EC private key (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256)", path)
	}
	jwk := jose.JSONWebKey{Key: ec.Public(), Algorithm: string(jose.ES256), Use: "sig"}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, jose.JSONWebKey{}, err
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	return ec, jwk, nil
}

// stepcaProvisionerJSON is the provisioner entry for step-ca's ca.json
// (authority.provisioners) that accepts the tokens this mode makes.
func stepcaProvisionerJSON(path string) ([]byte, error) {
	_, jwk, err := stepcaKey(path)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"type": "JWK", "name": stepcaProvisioner, "key": jwk,
		"claims": map[string]string{"defaultTLSCertDuration": "1h", "maxTLSCertDuration": "24h"},
	})
}

// prepareStepCA makes one CSR and one single-use token (step-ca refuses a
// token's ID twice) per request before the clock starts: step-ca's
// /1.0/sign takes {"csr", "ott"}, the token an ES256 JWT of the
// provisioner naming the CSR's name.
func prepareStepCA(_ context.Context, f *benchFlags) (op, error) {
	key, jwk, err := stepcaKey(f.stepcaKey)
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", jwk.KeyID))
	if err != nil {
		return nil, err
	}
	csrs, err := makeCSRs(f.keyType, f.count)
	if err != nil {
		return nil, err
	}
	url := f.caURL + "/1.0/sign"
	now := time.Now()
	bodies := make([][]byte, f.count)
	for i := range bodies {
		name := fmt.Sprintf("bench-%d.internal", i%len(csrs)) // makeCSRs' CN
		tok, err := jwt.Signed(signer).Claims(map[string]any{
			"iss": stepcaProvisioner, "aud": url, "sub": name, "sans": []string{name},
			"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
			"jti": fmt.Sprintf("%x-%d", now.UnixNano(), i),
		}).Serialize()
		if err != nil {
			return nil, err
		}
		csr := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrs[i%len(csrs)]})
		if bodies[i], err = json.Marshal(map[string]string{"csr": string(csr), "ott": tok}); err != nil {
			return nil, err
		}
	}
	cs, err := clients(f, nil)
	if err != nil {
		return nil, err
	}
	return func(_ context.Context, w, i int) error {
		_, err := expect(postJSON(cs[w], url, "", bodies[i]))
		return err
	}, nil
}
