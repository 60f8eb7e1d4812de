package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"pkid/config"
)

// durationValue is a duration flag whose refusal says how to write one
// ("30d": write days as hours, 720h), as the API and pkid.yaml do; the
// flag package's own refusal names only the unit it does not know.
type durationValue struct{ d *time.Duration }

func (v durationValue) String() string {
	if v.d == nil || *v.d == 0 {
		return "" // no "(default 0s)" in the help
	}
	return v.d.String()
}

func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("not a duration: %s", config.DurationAdvice(s))
	}
	*v.d = d
	return nil
}

func (v durationValue) Type() string { return "duration" }

// durationFlag defines c's flag name, a duration defaulting to def.
func durationFlag(c *cobra.Command, p *time.Duration, name string, def time.Duration, usage string) {
	*p = def
	c.Flags().Var(durationValue{p}, name, usage)
}
