package ca

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Clock is the only source of "now" in the CA.
type Clock interface{ Now() time.Time }

// SystemClock reads the wall clock.
type SystemClock struct{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }

// FakeClock is a settable clock for tests; the zero value starts at the
// zero time, so use NewFakeClock.
type FakeClock struct {
	mu      sync.Mutex
	t       time.Time
	elapsed time.Duration // the sum of Advances: time that passed
}

// Elapsed implements Elapser.
func (c *FakeClock) Elapsed() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.elapsed
}

// Step sets the clock's reading back or ahead by d, as NTP or an operator
// does to a wrong clock: d is not time that passed.
func (c *FakeClock) Step(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// NewFakeClock starts a fake clock at t.
func NewFakeClock(t time.Time) *FakeClock { return &FakeClock{t: t} }

// Now implements Clock.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d: time passes.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.elapsed += d
	c.mu.Unlock()
}

// EveryTick calls f every tick until ctx ends: the loop under every timer
// duty (each reads its injected clock inside f, so tests that move the
// clock see the duty act within a tick).
func EveryTick(ctx context.Context, tick time.Duration, f func(context.Context)) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f(ctx)
		}
	}
}

// RenewWhenDue is the loop of a timer duty that renews an artefact (the
// server's certificate): every tick it reads clock, and once due() has
// passed it calls renew, logging a failure as what and trying again (see
// retryPacer), until ctx ends.
func RenewWhenDue(ctx context.Context, tick time.Duration, clock Clock, due func(context.Context) time.Time, renew func(context.Context) error, log *slog.Logger, what string) {
	var p retryPacer
	EveryTick(ctx, tick, func(ctx context.Context) { renewIfDue(ctx, clock, &p, due, renew, log, what) })
}

// maxRetryTicks bounds retryPacer's wait: a minute at serve's 1 s tick.
const maxRetryTicks = 60

// retryPacer spaces the attempts of a failing duty in ticks: the first
// retry comes the next tick, each later one waits twice as many, up to
// maxRetryTicks, so a store that stays broken costs a log line a minute,
// not two a second; a success resets it. It counts ticks, not the injected
// clock, which tests hold still while a duty fails.
type retryPacer struct {
	skip, wait int
}

// ready reports whether this tick may try; it uses up one skipped tick.
func (p *retryPacer) ready() bool {
	if p.skip > 0 {
		p.skip--
		return false
	}
	return true
}

// failed schedules the next attempt; succeeded clears the count.
func (p *retryPacer) failed() {
	p.wait = min(max(2*p.wait, 1), maxRetryTicks)
	p.skip = p.wait - 1
}

func (p *retryPacer) succeeded() { p.skip, p.wait = 0, 0 }

// renewIfDue is one tick of RenewWhenDue.
func renewIfDue(ctx context.Context, clock Clock, p *retryPacer, due func(context.Context) time.Time, renew func(context.Context) error, log *slog.Logger, what string) {
	if !p.ready() || clock.Now().Before(due(ctx)) {
		return
	}
	if err := renew(ctx); err != nil {
		p.failed()
		log.Error(what+" renewal failed; will retry", "err", err, "in_ticks", p.wait)
		return
	}
	p.succeeded()
}
