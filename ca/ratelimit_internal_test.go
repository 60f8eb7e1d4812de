package ca

import (
	"fmt"
	"testing"
	"time"

	"pkid/policies"
)

// TestMemoryLimiter: a key gets Certificates at once, then one every
// Per/Certificates; Wait never spends; keys are independent; keys whose
// allowance is whole again are dropped once the map grows.
func TestMemoryLimiter(t *testing.T) {
	l := policies.RateLimit{Certificates: 3, Per: time.Minute}
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	m := NewMemoryLimiter()
	for i := range 3 {
		if w := m.Wait("a", l, t0); w != 0 {
			t.Fatalf("Wait before certificate %d: %s", i+1, w)
		}
		if w := m.Take("a", l, t0); w != 0 {
			t.Fatalf("certificate %d of 3 refused, wait %s", i+1, w)
		}
	}
	for _, tc := range []struct {
		at   time.Duration
		want time.Duration
	}{
		{0, 20 * time.Second},                           // the burst is spent: one every 20 s
		{15 * time.Second, 5 * time.Second},             // still 5 s to go
		{20 * time.Second, 0},                           // one back...
		{20 * time.Second, 20 * time.Second},            // ...and spent
		{2 * time.Minute, 0},                            // long idle: whole again, three at once
		{2 * time.Minute, 0},                            //
		{2 * time.Minute, 0},                            //
		{2*time.Minute + time.Second, 19 * time.Second}, // but not four
	} {
		if w := m.Wait("a", l, t0.Add(tc.at)); w != tc.want {
			t.Fatalf("at +%s: Wait %s, want %s", tc.at, w, tc.want)
		}
		if w := m.Take("a", l, t0.Add(tc.at)); w != tc.want {
			t.Fatalf("at +%s: Take %s, want %s", tc.at, w, tc.want)
		}
	}
	if w := m.Take("b", l, t0); w != 0 {
		t.Fatalf("another key is refused: %s", w)
	}
	// Sweeping: 2,000 keys used at t0 (the sweep at 1,024 keys finds none
	// whole, and next looks at 2,048); an hour later, when all are whole
	// again, new keys bring the map to 2,048 and the old ones go.
	for i := range 2000 {
		m.Take(fmt.Sprint("k", i), l, t0)
	}
	for i := range 60 {
		m.Take(fmt.Sprint("late", i), l, t0.Add(time.Hour))
	}
	m.mu.Lock()
	n := len(m.tat)
	m.mu.Unlock()
	if n > 60 {
		t.Fatalf("%d keys kept after a sweep, want the idle ones dropped", n)
	}
	if w := m.Take("a", l, t0.Add(time.Hour)); w != 0 {
		t.Fatalf("a dropped key is not whole: %s", w)
	}
}
