package api

// The OIDC waits, for tests that advance the clock past them.
const (
	KeyRefetchGap  = keyRefetchGap
	DiscoveryRetry = discoveryRetry
)
