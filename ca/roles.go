package ca

import (
	"maps"
	"slices"

	"pkid/policies"
)

// roleSet is one generation of the roles and their parsed templates. A
// reload swaps it whole, and a request takes its role and template from
// the one generation it loaded, never a role of one and a template of
// another.
type roleSet struct {
	roles     map[string]*policies.Role
	templates map[string]*roleTemplate
}

// newRoleSet names each role after its key and parses the templates
// (role name → x509util text).
func newRoleSet(roles map[string]*policies.Role, templates map[string]string) (*roleSet, error) {
	s := &roleSet{roles: map[string]*policies.Role{}, templates: map[string]*roleTemplate{}}
	for name, r := range roles {
		if r.Name == "" {
			r.Name = name
		}
		s.roles[name] = r
	}
	for name, text := range templates {
		rt, err := parseRoleTemplate(name, text)
		if err != nil {
			return nil, err
		}
		s.templates[name] = rt
	}
	return s, nil
}

// names lists the roles, sorted, for refusals that name the known ones.
func (s *roleSet) names() []string { return slices.Sorted(maps.Keys(s.roles)) }
