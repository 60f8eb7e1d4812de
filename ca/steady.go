package ca

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Steady is the clock the duties that delete go by: pruning expired
// tokens, certificate records past storage.retention, ACME objects, rate
// limit counts and the CRL list's expired entries. It reads the wall
// clock, but never further ahead of the wall clock's reading at start than
// the time that really passed since, as the monotonic clock measures it.
// A wall clock stepped ahead for a while (a bad NTP source, a mistyped
// date) would otherwise delete for good, and at once, every token still
// in use, every record and the CRL entries of revoked certificates that
// are still valid: after the clock is set right those certificates would
// be missing from the CRL. A forward step is followed only from the next
// start; a step back is followed at once, as it only delays deletions.
type Steady struct {
	c     Clock
	start time.Time // c's reading at start
	// elapsed is the time that really passed since start.
	elapsed func() time.Duration
	log     *slog.Logger
	warned  atomic.Bool
}

// Elapser is a Clock that knows how much time really passed apart from
// steps of its reading (FakeClock: its Advances, not its Steps). Steady
// uses Go's monotonic clock for any other Clock.
type Elapser interface {
	Elapsed() time.Duration
}

// NewSteady starts a Steady on c now.
func NewSteady(c Clock, log *slog.Logger) *Steady {
	s := &Steady{c: c, start: c.Now().Round(0), log: log}
	if e, ok := c.(Elapser); ok {
		base := e.Elapsed()
		s.elapsed = func() time.Duration { return e.Elapsed() - base }
	} else {
		t0 := time.Now()
		s.elapsed = func() time.Duration { return time.Since(t0) }
	}
	return s
}

// steadySlack is how far the wall clock may run ahead of the time passed
// before Ahead reports it: NTP slews both clocks alike, so more is a step
// or a suspend.
const steadySlack = time.Minute

// Now implements Clock: the wall clock's reading, or the time that passed
// since start if that is earlier.
func (s *Steady) Now() time.Time {
	now, ahead := s.read()
	if ahead <= 0 {
		return now
	}
	if ahead > steadySlack && s.warned.CompareAndSwap(false, true) {
		s.log.Warn(s.aheadBy(ahead))
	}
	return now.Add(-ahead)
}

// Ahead says, while the wall clock is more than a minute ahead of the
// time that passed since start, by how much and what that means ("" if
// it is not): a warning for /healthz.
func (s *Steady) Ahead() string {
	if _, ahead := s.read(); ahead > steadySlack {
		return s.aheadBy(ahead)
	}
	return ""
}

// read is the wall clock's reading and how far it is ahead of its reading
// at start plus the time that passed (negative when behind).
func (s *Steady) read() (now time.Time, ahead time.Duration) {
	now = s.c.Now()
	return now, now.Sub(s.start.Add(s.elapsed()))
}

func (s *Steady) aheadBy(d time.Duration) string {
	return fmt.Sprintf("this machine's clock moved %s further than the time that passed since pkid started (the clock was stepped ahead, or the machine was suspended): expired tokens, records and CRL entries are pruned by the time that passed until the next start, in case the clock is set back", d.Round(time.Second))
}
