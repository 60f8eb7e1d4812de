package storetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testAllowances: a key gets its certificates at once, then one every
// per/certificates; a look (spend false) never spends; keys are
// independent; of concurrent takes of the last allowance exactly one
// wins; a count left by a clock since stepped back is forgotten; the
// count survives a reopen; pruning deletes only keys whose allowance is
// whole again, which then read as whole.
func testAllowances(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	take := func(key string, at time.Duration, spend bool) time.Duration {
		t.Helper()
		w, err := s.TakeAllowance(ctx, key, 3, time.Minute, t0.Add(at), spend)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	for i := range 3 {
		if w := take("a", 0, false); w != 0 {
			t.Fatalf("ok/look before certificate %d: %s", i+1, w)
		}
		if w := take("a", 0, true); w != 0 {
			t.Fatalf("ok/certificate %d of 3 refused, wait %s", i+1, w)
		}
	}
	for _, tc := range []struct {
		at, want time.Duration
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
		if w := take("a", tc.at, false); w != tc.want {
			t.Fatalf("at +%s: look %s, want %s", tc.at, w, tc.want)
		}
		if w := take("a", tc.at, true); w != tc.want {
			t.Fatalf("at +%s: take %s, want %s", tc.at, w, tc.want)
		}
	}
	if w := take("b", 0, true); w != 0 {
		t.Fatalf("fail/another key is refused: %s", w)
	}
	// Eight racers for three allowances: three win.
	var won atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			w, err := s.TakeAllowance(ctx, "race", 3, time.Minute, t0, true)
			if err != nil {
				t.Error(err)
			} else if w == 0 {
				won.Add(1)
			}
		})
	}
	wg.Wait()
	if won.Load() != 3 {
		t.Fatalf("fail/%d of 8 concurrent takes won three allowances", won.Load())
	}
	// The clock ran a month ahead while "ahead" spent its allowance, then
	// was stepped back: the count from that clock is forgotten, not a
	// month of refusals.
	for range 3 {
		take("ahead", 30*24*time.Hour, true)
	}
	if w := take("ahead", 30*24*time.Hour, false); w != 20*time.Second {
		t.Fatalf("ok/spent on the clock ahead: %s", w)
	}
	for i := range 3 {
		if w := take("ahead", 0, true); w != 0 {
			t.Fatalf("fail/after the clock was stepped back a month, certificate %d waits %s", i+1, w)
		}
	}
	if w := take("ahead", 0, false); w != 20*time.Second {
		t.Fatalf("ok/spent again on the clock stepped back: %s", w)
	}
	s.Close()
	s = open(t)
	defer s.Close()
	if w := take("race", 0, false); w != 20*time.Second {
		t.Fatalf("fail/after reopen the spent allowance reads %s, want 20s", w)
	}
	// At +2m "a" (whole again at +3m) is not whole; "b" (at +20s),
	// "race" and "ahead" (at +1m) are. Two per call: two, one, none.
	for i, want := range []int{2, 1, 0} {
		if n, err := s.PruneAllowances(ctx, t0.Add(2*time.Minute), 2); err != nil || n != want {
			t.Fatalf("ok/prune call %d: %d, want %d (%v)", i+1, n, want, err)
		}
	}
	if w := take("a", 2*time.Minute+time.Second, false); w != 19*time.Second {
		t.Fatalf("fail/prune dropped a key still spent: %s", w)
	}
	for i := range 3 {
		if w := take("race", 0, true); w != 0 {
			t.Fatalf("ok/pruned key whole again: certificate %d refused (%s)", i+1, w)
		}
	}
	if n, err := s.PruneAllowances(ctx, t0.Add(time.Hour), 100); err != nil || n != 2 {
		t.Fatalf("ok/an hour on, both keys left are whole: %d %v", n, err)
	}
}
