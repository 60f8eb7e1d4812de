package policies

import (
	"strings"
	"testing"
)

func TestMatchClaims(t *testing.T) {
	trust := &OIDCTrust{Claims: map[string]string{"repository": "org/app", "ref": "refs/heads/*"}}
	cases := []struct {
		name   string
		claims map[string]any
		want   string
	}{
		{"ok/exact and glob", map[string]any{"repository": "org/app", "ref": "refs/heads/main"}, ""},
		{"fail/other repository", map[string]any{"repository": "org/evil", "ref": "refs/heads/main"}, `"repository" is "org/evil"`},
		{"fail/tag not branch", map[string]any{"repository": "org/app", "ref": "refs/tags/v1"}, `"ref" is "refs/tags/v1"`},
		{"fail/missing", map[string]any{"repository": "org/app"}, `"ref" is missing`},
		{"fail/not a string", map[string]any{"repository": 5, "ref": "refs/heads/x"}, `"repository" is missing`},
	}
	for _, c := range cases {
		used, err := MatchClaims(trust, c.claims)
		if c.want == "" {
			if err != nil || used["repository"] != "org/app" {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
