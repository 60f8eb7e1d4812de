package api

import (
	"encoding/pem"
	"fmt"
	"os"
	"strings"

	"pkid/config"
)

// KeyFileWarnings names what leaves a CA key less protected than `pkid
// init` writes it: the key or its passphrase file readable by
// group or others, or the key stored unencrypted. They are warnings, not
// refusals — Kubernetes mounts secrets 0644 unless told otherwise, and the
// host may protect them in other ways — so serve logs them at start and
// /healthz keeps showing them, and init prints them for the files it was
// given.
func KeyFileWarnings(keyFile, passwordFile string) []string {
	var w []string
	for _, f := range []string{keyFile, passwordFile} {
		fi, err := os.Stat(f)
		if err != nil {
			continue // the key has just been read: a race not worth a warning
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			w = append(w, fmt.Sprintf("%s is readable by others than its owner (mode %04o); chmod 600 it", f, perm))
		}
	}
	raw, err := os.ReadFile(keyFile)
	if err != nil {
		return w
	}
	if blk, _ := pem.Decode(raw); blk != nil && blk.Type != "ENCRYPTED PRIVATE KEY" && !strings.Contains(blk.Headers["Proc-Type"], "ENCRYPTED") {
		w = append(w, fmt.Sprintf("%s holds its key unencrypted (%s); store it as encrypted PKCS#8, as pkid init does", keyFile, blk.Type))
	}
	return w
}

// IntermediateKeyWarnings are KeyFileWarnings for the intermediate key cfg
// names: its file and passphrase file, or, for a key in a PKCS#11 token,
// the PIN file (which holds no PEM, so only its mode is judged) and the
// passphrase file, which still seals the stored EAB keys.
func IntermediateKeyWarnings(cfg *config.Config) []string {
	key := cfg.Resolve(cfg.CA.IntermediateKey)
	if config.IsKeyURI(cfg.CA.IntermediateKey) {
		key = cfg.IntermediateKeyPINFile()
	}
	return KeyFileWarnings(key, cfg.Resolve(cfg.CA.PasswordFile))
}
