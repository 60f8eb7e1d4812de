package ca

import (
	"strings"
	"testing"
	"time"

	"go.step.sm/crypto/x509util"
)

// TestNextGeneration: successors are named G2, G3, …; a name whose tail
// only looks like a generation gets one of its own.
func TestNextGeneration(t *testing.T) {
	for in, want := range map[string]string{
		"Acme Intermediate":     "Acme Intermediate G2",
		"Acme Intermediate G2":  "Acme Intermediate G3",
		"Acme Intermediate G9":  "Acme Intermediate G10",
		"Acme Intermediate G1":  "Acme Intermediate G1 G2",
		"Acme Intermediate G0":  "Acme Intermediate G0 G2",
		"Acme Intermediate G02": "Acme Intermediate G02 G2",
		"Acme Intermediate G":   "Acme Intermediate G G2",
		"Acme Intermediate Gx":  "Acme Intermediate Gx G2",
		"G2":                    "G2 G2",
	} {
		if got := nextGeneration(in); got != want {
			t.Errorf("nextGeneration(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCANameBounds: a CA name leaves room in the intermediate's common
// name for " Intermediate G99" within RFC 5280's 64 characters (counted
// as characters, not bytes); control characters are refused. An
// intermediate named before that bound, whose successor's name would not
// fit, is not rotated into an invalid certificate.
func TestCANameBounds(t *testing.T) {
	for _, c := range []struct {
		name, want string
	}{
		{strings.Repeat("a", MaxCANameLength), ""},
		{strings.Repeat("é", MaxCANameLength), ""},
		{strings.Repeat("a", MaxCANameLength+1), "at most 47 fit"},
		{"Ops\tCA", "control character"},
		{"Ops\xffCA", "not UTF-8"},
	} {
		err := CheckCAName(c.name)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("CheckCAName(%q) = %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := CreateHierarchy(HierarchyOptions{Name: strings.Repeat("a", 60), KeyType: "ed25519"}); err == nil || !strings.Contains(err.Error(), "at most 47 fit") {
		t.Fatalf("CreateHierarchy with a 60-character name: %v", err)
	}

	now := time.Now()
	h, err := CreateHierarchy(HierarchyOptions{Name: "T", KeyType: "ed25519", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	long, err := signCA(strings.Repeat("b", 62)+" G9", x509util.DefaultIntermediateTemplate, h.IntermediateKey, h.Root, h.RootKey, now, 24*time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = NextIntermediateFor(h.Root, h.RootKey, long, h.IntermediateKey, time.Hour, now)
	if err == nil || !strings.Contains(err.Error(), "would have 66 characters") {
		t.Fatalf("successor of a 65-character intermediate name: %v", err)
	}
}
