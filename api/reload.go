package api

import (
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"

	"pkid/ca"
	"pkid/config"
	"pkid/policies"
)

// ReloadRoles applies what a changed pkid.yaml may change while serve
// runs: the roles and their templates (serve's SIGHUP, `systemctl reload`).
// It re-reads the file serve started from; a file that does not load or a
// template that does not parse changes nothing, and says why. Settings
// outside roles are named in a warning: they take effect at the next
// restart. The error is why nothing changed, nil when the roles were
// applied.
func ReloadRoles(started *config.Config, a *ca.Authority, log *slog.Logger) error {
	before := a.Roles()
	cfg, err := config.Load(started.Path)
	if err == nil {
		var templates map[string]string
		if templates, err = ReadTemplates(cfg); err == nil {
			err = a.SetRoles(cfg.Roles, templates)
		}
	}
	if err != nil {
		log.Error("reload refused; the roles in use stay", "err", err)
		return err
	}
	if keys := changedOutsideRoles(started, cfg); len(keys) > 0 {
		log.Warn("reload: these settings changed and take effect at the next restart", "keys", keys)
	}
	for _, w := range RoleWarnings(cfg, a.Intermediate()) {
		log.Warn("role", "warning", w)
	}
	logRoleChanges(before, a.Roles(), log)
	return nil
}

// logRoleChanges names the roles a reload added, removed and changed.
func logRoleChanges(before, after map[string]*policies.Role, log *slog.Logger) {
	added, removed, changed := roleChanges(before, after)
	log.Info("roles reloaded", "added", added, "removed", removed, "changed", changed)
}

// roleChanges names, sorted, the roles in after and not before, in
// before and not after, and in both but different.
func roleChanges(before, after map[string]*policies.Role) (added, removed, changed []string) {
	added, removed, changed = []string{}, []string{}, []string{}
	for _, name := range slices.Sorted(maps.Keys(after)) {
		old, ok := before[name]
		switch {
		case !ok:
			added = append(added, name)
		case !reflect.DeepEqual(old, after[name]):
			changed = append(changed, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(before)) {
		if _, ok := after[name]; !ok {
			removed = append(removed, name)
		}
	}
	return added, removed, changed
}

// changedOutsideRoles lists the top-level keys of pkid.yaml, other than
// roles, whose values differ between a and b.
func changedOutsideRoles(a, b *config.Config) []string {
	var keys []string
	va, vb, t := reflect.ValueOf(*a), reflect.ValueOf(*b), reflect.TypeOf(*a)
	for i := range t.NumField() {
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if key == "roles" || key == "-" {
			continue
		}
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			keys = append(keys, key)
		}
	}
	return keys
}
