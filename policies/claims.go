package policies

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// MatchClaims checks a token's claims against the role's conditions and
// returns the claims that were used (for the audit log) or why they fail.
func MatchClaims(t *OIDCTrust, claims map[string]any) (map[string]string, error) {
	used := map[string]string{}
	keys := make([]string, 0, len(t.Claims))
	for k := range t.Claims {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var bad []string
	for _, k := range keys {
		want := t.Claims[k]
		got, ok := claims[k].(string)
		if !ok {
			bad = append(bad, fmt.Sprintf("claim %q is missing (want %q)", k, want))
			continue
		}
		if m, err := path.Match(want, got); err != nil || !m {
			bad = append(bad, fmt.Sprintf("claim %q is %q, want %q", k, got, want))
			continue
		}
		used[k] = got
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return used, nil
}
