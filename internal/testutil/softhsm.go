package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// SoftHSMModule is where Debian's softhsm2 package puts its PKCS#11
// module.
const SoftHSMModule = "/usr/lib/softhsm/libsofthsm2.so"

// HSM is a SoftHSM token made for one test: a real PKCS#11 module with
// its token store in a temporary directory.
type HSM struct {
	// Conf is the SoftHSM config naming the token store: processes reach
	// the token with SOFTHSM2_CONF set to it (Env).
	Conf string
	// PinFile holds the user PIN, mode 0600.
	PinFile string
}

// SoftHSM initializes a token labelled "pkid" with a fresh store and
// sets SOFTHSM2_CONF for this test's process. The module reads it once
// per process, so a package uses one token for all its tests. Without
// softhsm2 the test is skipped, or fails with PKID_E2E=1.
func SoftHSM(t testing.TB) *HSM {
	t.Helper()
	util, err := exec.LookPath("softhsm2-util")
	if err == nil {
		_, err = os.Stat(SoftHSMModule)
	}
	if err != nil {
		if os.Getenv("PKID_E2E") == "1" {
			t.Fatalf("softhsm2 is required with PKID_E2E=1: %v", err)
		}
		t.Skipf("softhsm2 not installed: %v", err)
	}
	dir := t.TempDir()
	h := &HSM{Conf: filepath.Join(dir, "softhsm2.conf"), PinFile: filepath.Join(dir, "pin")}
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.WriteFile(h.Conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.PinFile, []byte("4711\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", h.Conf)
	cmd := exec.Command(util, "--init-token", "--free", "--label", "pkid", "--pin", "4711", "--so-pin", "8150")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	return h
}

// Env is the environment entry that points a process at the token.
func (h *HSM) Env() string { return "SOFTHSM2_CONF=" + h.Conf }

// KeyURI is the PKCS#11 URI of a key labelled object with CKA_ID id (hex)
// in the token, logging in with the PIN file.
func (h *HSM) KeyURI(object, id string) string {
	return fmt.Sprintf("pkcs11:module-path=%s;token=pkid;id=%s;object=%s?pin-source=%s", SoftHSMModule, id, object, h.PinFile)
}
