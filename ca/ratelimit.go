package ca

import (
	"slices"
	"strings"
	"sync"
	"time"

	"pkid/errs"
	"pkid/policies"
	"pkid/store"
)

// Limiter keeps the allowances of roles' rate limits. It is the one piece
// of issuance state held outside the store, behind this interface as the
// ACME nonces are: losing it (a restart) only forgets recent issuance, and
// replicas sharing a store each count on their own until a shared
// implementation is plugged in here.
type Limiter interface {
	// Take spends one of key's allowances under l at now and returns 0,
	// or, with none left, spends nothing and returns how long until one
	// is.
	Take(key string, l policies.RateLimit, now time.Time) time.Duration
	// Wait is Take without spending.
	Wait(key string, l policies.RateLimit, now time.Time) time.Duration
}

// MemoryLimiter is a Limiter in this process's memory. Each key holds one
// time, the generic cell rate algorithm's "theoretical arrival time": the
// moment the key's allowance would be whole again. A certificate moves it
// Per/Certificates later; it may run at most Per ahead of now.
type MemoryLimiter struct {
	mu    sync.Mutex
	tat   map[string]time.Time
	sweep int // len(tat) that triggers dropping keys whose allowance is whole
}

// NewMemoryLimiter returns an empty MemoryLimiter.
func NewMemoryLimiter() *MemoryLimiter {
	return &MemoryLimiter{tat: map[string]time.Time{}, sweep: 1024}
}

// Take implements Limiter.
func (m *MemoryLimiter) Take(key string, l policies.RateLimit, now time.Time) time.Duration {
	return m.take(key, l, now, true)
}

// Wait implements Limiter.
func (m *MemoryLimiter) Wait(key string, l policies.RateLimit, now time.Time) time.Duration {
	return m.take(key, l, now, false)
}

func (m *MemoryLimiter) take(key string, l policies.RateLimit, now time.Time, spend bool) time.Duration {
	step := l.Per / time.Duration(l.Certificates)
	m.mu.Lock()
	defer m.mu.Unlock()
	tat := m.tat[key]
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(step)
	if wait := next.Sub(now) - l.Per; wait > 0 {
		return wait
	}
	if spend {
		m.tat[key] = next
		if len(m.tat) >= m.sweep {
			m.dropWhole(now)
		}
	}
	return 0
}

// dropWhole forgets keys whose allowance is whole again (an absent key
// means that too), so memory follows the credentials active within one
// period, not every credential ever seen.
func (m *MemoryLimiter) dropWhole(now time.Time) {
	for k, t := range m.tat {
		if !t.After(now) {
			delete(m.tat, k)
		}
	}
	m.sweep = max(1024, 2*len(m.tat))
}

// Allowed reports, without spending one, whether requester has a
// certificate left under roleName's rate limit: ACME asks at newOrder,
// before any validation work is done for an order that could not be
// finalized.
func (a *Authority) Allowed(roleName, requester string) error {
	role := a.Role(roleName)
	if role == nil {
		return nil
	}
	return a.allowance(role, &SignRequest{Requester: requester}, nil, false)
}

// allowance spends (or, with spend false, looks for) one certificate of
// req's credential under role's rate limit, refusing with RateLimited and
// the wait when none is left. The credential is the requester (an API
// token's name, an OIDC identity, an ACME account); for an mTLS renewal,
// whose requester is each time the certificate being renewed, it is the
// names (dec's) that the chain of renewals keeps.
func (a *Authority) allowance(role *policies.Role, req *SignRequest, dec *policies.Decision, spend bool) error {
	l := role.RateLimit
	if l == nil {
		return nil
	}
	key, who := role.Name+"\x00"+req.Requester, req.Requester
	if req.Via == store.ViaRenew && dec != nil {
		names := slices.Sorted(slices.Values(dec.Names()))
		key, who = role.Name+"\x00names:"+strings.Join(names, ","), "renewals of "+strings.Join(names, ", ")
	}
	var wait time.Duration
	if now := a.d.Clock.Now(); spend {
		wait = a.d.Limiter.Take(key, *l, now)
	} else {
		wait = a.d.Limiter.Wait(key, *l, now)
	}
	if wait == 0 {
		return nil
	}
	e := errs.New(errs.RateLimited, "role %q allows %d certificates per %s to one credential, and %s has had them; the next is allowed in %s", role.Name, l.Certificates, l.Per, who, (wait + time.Second - 1).Truncate(time.Second))
	e.RetryAfter = wait
	return e
}
