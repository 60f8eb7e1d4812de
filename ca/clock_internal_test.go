package ca

import (
	"slices"
	"testing"
)

// TestRetryPacer: a duty that keeps failing tries on ticks 0, 1, 3, 7, …
// (each wait twice the last) until the wait reaches maxRetryTicks, then
// every maxRetryTicks; a success makes the next failure retry at once.
func TestRetryPacer(t *testing.T) {
	var p retryPacer
	var tries []int
	for tick := range 250 {
		if p.ready() {
			tries = append(tries, tick)
			p.failed()
		}
	}
	want := []int{0, 1, 3, 7, 15, 31, 63, 123, 183, 243}
	if !slices.Equal(tries, want) {
		t.Fatalf("tries on ticks %v, want %v", tries, want)
	}
	p.succeeded()
	if !p.ready() {
		t.Fatal("not ready after a success")
	}
	p.failed()
	if !p.ready() {
		t.Fatal("the first failure after a success is not retried the next tick")
	}
}
