package acme

import (
	"regexp"
	"testing"
	"time"
)

func TestNewID(t *testing.T) {
	now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	shape := regexp.MustCompile(`^[0-9a-v]{26}$`)
	seen := map[string]bool{}
	prev := ""
	for i := range 1000 {
		id := newID(now.Add(time.Duration(i) * time.Millisecond))
		if !shape.MatchString(id) {
			t.Fatalf("id %q", id)
		}
		if seen[id] {
			t.Fatalf("id %q repeated", id)
		}
		seen[id] = true
		// Later milliseconds sort after, as text and so as store keys.
		if id <= prev {
			t.Fatalf("id %q sorts before %q", id, prev)
		}
		prev = id
	}
	// IDs of one millisecond differ in their random part.
	if a, b := newID(now), newID(now); a == b || a[:6] != b[:6] {
		t.Fatalf("IDs of one millisecond %q and %q", a, b)
	}
}
