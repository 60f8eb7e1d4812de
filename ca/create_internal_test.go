package ca

import "testing"

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
