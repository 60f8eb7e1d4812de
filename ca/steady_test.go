package ca_test

import (
	"context"
	"crypto/x509"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"pkid/ca"
	"pkid/internal/testutil"
)

// offsetClock is the system clock with a settable step, as `date -s` or
// an NTP step would make it: its monotonic reading does not move.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) Now() time.Time { return time.Now().Round(0).Add(time.Duration(c.off.Load())) }

// TestSteady: the clock pruning goes by follows the wall clock while it
// moves with the time that passes and when it is stepped back, but not a
// step ahead, which it reports (once in the log, while it lasts in Ahead).
// Both ways of knowing the time passed: a FakeClock's Advances, and the
// monotonic clock under any other Clock.
func TestSteady(t *testing.T) {
	const month = 30 * 24 * time.Hour
	t.Run("fake clock", func(t *testing.T) {
		var logBuf testutil.SyncBuffer
		clk := ca.NewFakeClock(now)
		s := ca.NewSteady(clk, slog.New(slog.NewTextHandler(&logBuf, nil)))
		clk.Advance(time.Hour)
		if got := s.Now(); !got.Equal(now.Add(time.Hour)) || s.Ahead() != "" {
			t.Fatalf("after an hour passed: %s %q", got, s.Ahead())
		}
		clk.Step(month)
		if got := s.Now(); !got.Equal(now.Add(time.Hour)) {
			t.Fatalf("stepped a month ahead: %s, want the hour that passed", got)
		}
		if a := s.Ahead(); !strings.Contains(a, "moved 720h0m0s further than the time that passed") {
			t.Fatalf("Ahead: %q", a)
		}
		s.Now()
		if n := strings.Count(logBuf.String(), "further than the time that passed"); n != 1 {
			t.Fatalf("warned %d times, want once:\n%s", n, logBuf.String())
		}
		clk.Step(-month - 2*time.Hour)
		if got := s.Now(); !got.Equal(now.Add(-time.Hour)) || s.Ahead() != "" {
			t.Fatalf("stepped back behind the start: %s %q", got, s.Ahead())
		}
	})
	t.Run("monotonic clock", func(t *testing.T) {
		clk := &offsetClock{}
		s := ca.NewSteady(clk, slog.New(slog.DiscardHandler))
		clk.off.Store(int64(month))
		if got := s.Now(); got.After(time.Now().Add(time.Minute)) || s.Ahead() == "" {
			t.Fatalf("stepped a month ahead: %s (%q)", got, s.Ahead())
		}
		clk.off.Store(int64(-time.Hour))
		if got := s.Now(); got.After(time.Now().Add(-59*time.Minute)) || s.Ahead() != "" {
			t.Fatalf("stepped an hour back: %s (%q)", got, s.Ahead())
		}
	})
}

// TestSteadyShared: a retired intermediate's authority shares the current
// one's Steady, so a clock stepped ahead is warned about once, not once
// per intermediate, when both CRL publishers read it.
func TestSteadyShared(t *testing.T) {
	var logBuf testutil.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	tc := testutil.CA(t, "ec-p256")
	clk := ca.NewFakeClock(now)
	st := tempStore(t)
	current, err := ca.New(ca.Deps{Root: tc.Root, Intermediate: tc.Intermediate, Signer: tc.Signer, Store: st, Clock: clk, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	next, key, err := ca.NextIntermediate(tc.Root, testutil.RootKey(t, "ec-p256"), tc.Intermediate, "", 0, now)
	if err != nil {
		t.Fatal(err)
	}
	newer, err := ca.New(ca.Deps{Root: tc.Root, Intermediate: next, Signer: key, Store: st, Clock: clk, Log: log, Retired: []*x509.Certificate{tc.Intermediate}})
	if err != nil {
		t.Fatal(err)
	}
	retired, err := ca.New(ca.Deps{Root: tc.Root, Intermediate: tc.Intermediate, Signer: tc.Signer, Store: st, Clock: clk, Log: log, Steady: newer.Steady()})
	if err != nil || retired.Steady() != newer.Steady() || current.Steady() == newer.Steady() {
		t.Fatalf("shared: %v", err)
	}
	clk.Step(30 * 24 * time.Hour)
	for _, a := range []*ca.Authority{newer, retired} {
		if _, err := ca.NewCRLPublisher(a, time.Hour, log).Generate(context.Background(), true); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logBuf.String(), "further than the time that passed"); n != 1 {
		t.Fatalf("warned %d times, want once:\n%s", n, logBuf.String())
	}
}
