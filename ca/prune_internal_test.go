package ca

import (
	"errors"
	"testing"
)

// TestInBatches (inBatches): steps run while each deletes a whole batch; the total
// counts every step, a failing one included, and the error comes back.
func TestInBatches(t *testing.T) {
	boom := errors.New("boom")
	cases := []struct {
		name  string
		steps []int // deleted by each call; -1 fails after deleting 2
		calls int
		total int
		err   error
	}{
		{"ok/nothing", []int{0}, 1, 0, nil},
		{"ok/short first", []int{3}, 1, 3, nil},
		{"ok/full then short", []int{5, 5, 1}, 3, 11, nil},
		{"ok/full then empty", []int{5, 0}, 2, 5, nil},
		{"fail/second fails", []int{5, -1}, 2, 7, boom},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			total, err := inBatches(5, func(max int) (int, error) {
				if max != 5 {
					t.Fatalf("max %d", max)
				}
				n := c.steps[calls]
				calls++
				if n < 0 {
					return 2, boom
				}
				return n, nil
			})
			if calls != c.calls || total != c.total || !errors.Is(err, c.err) || (c.err == nil && err != nil) {
				t.Fatalf("calls %d total %d err %v", calls, total, err)
			}
		})
	}
}
