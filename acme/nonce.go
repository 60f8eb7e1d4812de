package acme

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"
)

// NonceStore issues single-use anti-replay nonces. On one node an in-memory
// store is enough (a lost nonce costs a client one badNonce retry); a set of
// replicas needs a shared implementation (a table consumed by
// DELETE … RETURNING), hence the interface.
type NonceStore interface {
	New() string
	// Use consumes a nonce, reporting whether it was issued and unused.
	Use(nonce string) bool
}

// MemoryNonces keeps nonces in memory for a bounded lifetime and count.
type MemoryNonces struct {
	mu    sync.Mutex
	ttl   time.Duration
	max   int
	live  map[string]time.Time
	order []string
	now   func() time.Time
}

// NewMemoryNonces keeps up to max nonces for ttl each.
func NewMemoryNonces(ttl time.Duration, max int, now func() time.Time) *MemoryNonces {
	return &MemoryNonces{ttl: ttl, max: max, live: map[string]time.Time{}, now: now}
}

// New implements NonceStore. The nonce is 128 random bits in canonical
// base64url: certbot's acme library decodes the nonce and re-encodes it when
// signing, so a string that does not round-trip (rand.Text's 26 base32
// characters, say) comes back different and is refused as badNonce.
func (m *MemoryNonces) New() string {
	var b [16]byte
	rand.Read(b[:])
	n := base64.RawURLEncoding.EncodeToString(b[:])
	m.mu.Lock()
	defer m.mu.Unlock()
	m.live[n] = m.now().Add(m.ttl)
	m.order = append(m.order, n)
	// Evict the oldest beyond max; their clients get one badNonce retry.
	for len(m.order) > m.max {
		delete(m.live, m.order[0])
		m.order = m.order[1:]
	}
	if len(m.order) > 2*m.max { // compact the slice of consumed entries
		m.order = append([]string(nil), m.order...)
	}
	return n
}

// Use implements NonceStore.
func (m *MemoryNonces) Use(n string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	exp, ok := m.live[n]
	if !ok {
		return false
	}
	delete(m.live, n)
	return m.now().Before(exp)
}
