package api

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"pkid/ca"
	"pkid/config"
)

// RetiredPaths is where `pkid ca rotate-intermediate` keeps an
// intermediate it retires, by issuer ID: its certificate beside the
// current one's in retired/<issuer>.crt, its key beside the current key in
// retired/<issuer>.key (encrypted with the same password file).
func RetiredPaths(cfg *config.Config, issuerID string) (certPath, keyPath string) {
	certDir, keyDir := RetiredDirs(cfg)
	return filepath.Join(certDir, issuerID+".crt"), filepath.Join(keyDir, issuerID+".key")
}

// RetiredTokenKeyPath is where a retired intermediate whose key stays in
// a PKCS#11 token has that key's URI, in place of RetiredPaths' key file.
func RetiredTokenKeyPath(cfg *config.Config, issuerID string) string {
	_, keyDir := RetiredDirs(cfg)
	return filepath.Join(keyDir, issuerID+".uri")
}

// RetiredDirs are the retired/ directories beside the intermediate's
// certificate and key (for a key in a token, D/secrets/retired).
func RetiredDirs(cfg *config.Config) (certDir, keyDir string) {
	keyDir = filepath.Join(filepath.Dir(cfg.Resolve(cfg.CA.IntermediateKey)), "retired")
	if config.IsKeyURI(cfg.CA.IntermediateKey) {
		keyDir = filepath.Join(cfg.Dir(), "secrets", "retired")
	}
	return filepath.Join(filepath.Dir(cfg.Resolve(cfg.CA.IntermediateCert)), "retired"), keyDir
}

// loadRetiredKey reads a retired intermediate's key: opened in its token
// if a URI names it, else decrypted from its file.
func loadRetiredKey(cfg *config.Config, issuerID string) (crypto.Signer, error) {
	if raw, err := os.ReadFile(RetiredTokenKeyPath(cfg, issuerID)); err == nil {
		return ca.OpenTokenKey(context.Background(), strings.TrimSpace(string(raw)))
	}
	_, keyPath := RetiredPaths(cfg, issuerID)
	return ca.LoadKey(keyPath, cfg.Resolve(cfg.CA.PasswordFile))
}

// retiredKey is a retired intermediate and its key.
type retiredKey struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// loadRetired reads the retired intermediates that serve loads
// (RetiredCerts) and their keys.
func loadRetired(cfg *config.Config, root *x509.Certificate, now time.Time, log *slog.Logger) ([]retiredKey, error) {
	certs, err := RetiredCerts(cfg, root, now, log)
	if err != nil {
		return nil, err
	}
	var out []retiredKey
	for _, cert := range certs {
		id := hex.EncodeToString(cert.SubjectKeyId)
		key, err := loadRetiredKey(cfg, id)
		if err != nil {
			for _, rk := range out {
				CloseKey(rk.key)
			}
			return nil, fmt.Errorf("retired intermediate %s: key: %w", id, err)
		}
		out = append(out, retiredKey{cert: cert, key: key})
	}
	return out, nil
}

// RetiredCerts reads the retired intermediates that have not expired (an
// expired one's certificates have all expired too: nothing is left to
// check against its CRL) and that root signed (one of an older hierarchy,
// left behind by pkid init --force, has nothing to do with this CA). Each
// one skipped is named in the log, so its files can be removed. Their
// keys are not read: the offline admin commands need only the
// certificates.
func RetiredCerts(cfg *config.Config, root *x509.Certificate, now time.Time, log *slog.Logger) ([]*x509.Certificate, error) {
	certDir, _ := RetiredDirs(cfg)
	paths, err := filepath.Glob(filepath.Join(certDir, "*.crt"))
	if err != nil {
		return nil, err
	}
	slices.Sort(paths)
	var out []*x509.Certificate
	for _, p := range paths {
		cert, err := ca.LoadCertificate(p)
		if err != nil {
			return nil, fmt.Errorf("retired intermediate: %w", err)
		}
		id := hex.EncodeToString(cert.SubjectKeyId)
		if now.After(cert.NotAfter) {
			log.Info("retired intermediate expired, and every certificate it issued with it; its files may be removed", "issuer", id, "cert", p)
			continue
		}
		if err := cert.CheckSignatureFrom(root); err != nil {
			log.Warn("retired intermediate not signed by this CA's root (an older hierarchy?): ignored; remove its files", "issuer", id, "cert", p)
			continue
		}
		if want := id + ".crt"; filepath.Base(p) != want {
			return nil, fmt.Errorf("retired intermediate %s holds issuer %s: name it %s", p, id, want)
		}
		out = append(out, cert)
	}
	return out, nil
}

// CheckRetired loads the retired intermediates as serve would (files
// named by issuer, keys that decrypt) and returns the issuer IDs that
// serve will keep serving: `pkid config check`. What serve would skip goes
// to log.
func CheckRetired(cfg *config.Config, root *x509.Certificate, now time.Time, log *slog.Logger) ([]string, error) {
	rks, err := loadRetired(cfg, root, now, log)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, rk := range rks {
		CloseKey(rk.key)
		ids = append(ids, hex.EncodeToString(rk.cert.SubjectKeyId))
	}
	return ids, nil
}

// startRetired makes a retired intermediate's CRL publisher and OCSP
// responder, each signing with its own key: an authority over the
// current one's store and root with no roles, which never issues. Its CRL
// follows the current authority's revocations (which are all of them);
// its OCSP cache follows the store's revocation count every tick.
func startRetired(ctx context.Context, rk retiredKey, current *ca.Authority, cfg *config.Config, clock ca.Clock, tick time.Duration, log *slog.Logger) (RetiredIssuer, error) {
	a, err := ca.New(ca.Deps{Root: current.Root(), Intermediate: rk.cert, Signer: rk.key, Store: current.Store(), Clock: clock, PointersURL: cfg.PointersURL, Log: log, Steady: current.Steady()})
	if err != nil {
		return RetiredIssuer{}, err
	}
	id := a.IssuerID()
	crl := ca.NewCRLPublisher(a, cfg.CRL.Validity, log)
	crl.Tick = tick
	crl.Published = keepCRLCopy(cfg, log)
	crl.Follow(current)
	if _, err := crl.Generate(ctx, false); err != nil {
		return RetiredIssuer{}, fmt.Errorf("CRL of retired intermediate %s: %w", id, err)
	}
	o, err := ca.NewOCSPResponder(ctx, a)
	if err != nil {
		return RetiredIssuer{}, fmt.Errorf("OCSP of retired intermediate %s: %w", id, err)
	}
	return RetiredIssuer{ID: id, CRL: crl, OCSP: o}, nil
}

// retiredIDs lists the issuer IDs of ris, for the start log and /healthz.
func retiredIDs(ris []RetiredIssuer) []string {
	ids := make([]string, len(ris))
	for i, ri := range ris {
		ids[i] = ri.ID
	}
	return ids
}

// retiredCerts lists the certificates of rks.
func retiredCerts(rks []retiredKey) []*x509.Certificate {
	out := make([]*x509.Certificate, len(rks))
	for i, rk := range rks {
		out[i] = rk.cert
	}
	return out
}
