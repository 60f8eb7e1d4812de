package errs

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

// TestClassify: what an edge answers for each shape of error, including a
// body cut at its listener's limit wherever a reader wrapped it.
func TestClassify(t *testing.T) {
	tooBig := &http.MaxBytesError{Limit: 65536}
	cases := []struct {
		name   string
		err    error
		kind   Kind
		detail string
	}{
		{"ok/an Error", New(Forbidden, "name x is outside the role"), Forbidden, "name x is outside the role"},
		{"ok/an Error under a wrap", fmt.Errorf("sign: %w", New(NotFound, "no role r")), NotFound, "no role r"},
		{"ok/a cut body", tooBig, TooLarge, "request body is larger than the limit of 65536 bytes"},
		{"ok/a cut body under the reader's Malformed", Wrap(Malformed, fmt.Errorf("decode: %w", tooBig), "not JSON"), TooLarge, "request body is larger than the limit of 65536 bytes"},
		{"fail/anything else is internal, its text hidden", errors.New("disk on fire"), Internal, "internal error; the server log has the details"},
		{"fail/an Internal Error's detail is hidden too", New(Internal, "secret path /x"), Internal, "internal error; the server log has the details"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if k, d := KindOf(tc.err), DetailOf(tc.err); k != tc.kind || d != tc.detail {
				t.Fatalf("%v %q, want %v %q", k, d, tc.kind, tc.detail)
			}
		})
	}
}
