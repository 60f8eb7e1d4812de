package acme

import "testing"

func TestHostHeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		port int
		want string
	}{
		{"svc.internal", 80, "svc.internal"},
		{"svc.internal", 5002, "svc.internal:5002"},
		{"127.0.0.1", 80, "127.0.0.1"},
		{"fd12::1", 80, "[fd12::1]"},
		{"fd12::1", 5002, "[fd12::1]:5002"},
	} {
		if got := hostHeader(tc.name, tc.port); got != tc.want {
			t.Errorf("hostHeader(%q, %d) = %q, want %q", tc.name, tc.port, got, tc.want)
		}
	}
}
