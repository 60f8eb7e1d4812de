package api

import (
	"bytes"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pkid/ca"
	"pkid/config"
	"pkid/internal/testutil"
)

// TestLoadRetired: serve loads a retired intermediate of this root that
// has not expired, skips (and names in the log) an expired one and one of
// another root, and refuses to start on a file not named by its issuer.
func TestLoadRetired(t *testing.T) {
	dir := testutil.CADir(t, "ec-p256", "127.0.0.1:1", "127.0.0.1:2", nil)
	cfg, err := config.Load(filepath.Join(dir, "pkid.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	fx := testutil.CA(t, "ec-p256")
	now := time.Now()
	retire := func(name string, c []byte, key []byte) {
		t.Helper()
		certPath, keyPath := RetiredPaths(cfg, name)
		for _, d := range []string{filepath.Dir(certPath), filepath.Dir(keyPath)} {
			os.MkdirAll(d, 0o700)
		}
		os.WriteFile(certPath, ca.PEMCert(c), 0o644)
		if key != nil {
			os.WriteFile(keyPath, key, 0o600)
		}
	}
	// Live: the fixture's intermediate and its encrypted key, as a
	// rotation would have kept them.
	liveID := hex.EncodeToString(fx.Intermediate.SubjectKeyId)
	liveKey, _ := os.ReadFile(filepath.Join(fx.Dir, "intermediate.key"))
	retire(liveID, fx.Intermediate.Raw, liveKey)
	expired, _, err := ca.NextIntermediate(fx.Root, testutil.RootKey(t, "ec-p256"), fx.Intermediate, "", time.Hour, now.Add(-48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	retire(hex.EncodeToString(expired.SubjectKeyId), expired.Raw, nil)
	other, err := ca.CreateHierarchy(ca.HierarchyOptions{KeyType: "ec-p256", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	retire(hex.EncodeToString(other.Intermediate.SubjectKeyId), other.Intermediate.Raw, nil)

	var log bytes.Buffer
	rks, err := loadRetired(cfg, fx.Root, now, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil || len(rks) != 1 || !rks[0].cert.Equal(fx.Intermediate) {
		t.Fatalf("loaded %d retired intermediates, %v; want the live one", len(rks), err)
	}
	for _, want := range []string{"retired intermediate expired", "not signed by this CA's root"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	retire("misnamed", fx.Intermediate.Raw, nil)
	if _, err := loadRetired(cfg, fx.Root, now, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "name it "+liveID+".crt") {
		t.Fatalf("fail/a file not named by its issuer: %v", err)
	}
}
