// Package config binds command-line flags to their environment-variable twins. Every setting can
// come from the environment (12-factor); a flag given on the command line wins. A malformed value
// fails start-up with one line naming the variable.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Binder registers flags whose defaults come from environment variables.
type Binder struct {
	fs     *flag.FlagSet
	lookup func(string) (string, bool)
	errs   []error
	// Vars lists every variable bound, in registration order, for help and documentation.
	Vars []Var
}

// Var describes one setting.
type Var struct {
	Flag, Env, Default, Usage string
	Secret                    bool
}

// NewBinder binds flags on fs to the process environment.
func NewBinder(fs *flag.FlagSet) *Binder {
	return &Binder{fs: fs, lookup: os.LookupEnv}
}

// WithLookup replaces the environment, for tests.
func (b *Binder) WithLookup(lookup func(string) (string, bool)) *Binder {
	b.lookup = lookup
	return b
}

func (b *Binder) env(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	v, ok := b.lookup(name)
	return v, ok && v != ""
}

func (b *Binder) record(flagName, env, def, usage string, secret bool) string {
	b.Vars = append(b.Vars, Var{Flag: flagName, Env: env, Default: def, Usage: usage, Secret: secret})
	if env != "" {
		usage += " (env " + env + ")"
	}
	return usage
}

// String binds a string setting. An empty flag name binds the variable only.
func (b *Binder) String(p *string, flagName, env, def, usage string) {
	b.string(p, flagName, env, def, usage, false)
}

// Secret binds a string setting whose value must never be printed.
func (b *Binder) Secret(p *string, flagName, env, usage string) {
	b.string(p, flagName, env, "", usage, true)
}

func (b *Binder) string(p *string, flagName, env, def, usage string, secret bool) {
	usage = b.record(flagName, env, def, usage, secret)
	*p = def
	if v, ok := b.env(env); ok {
		*p = v
	}
	if flagName != "" {
		b.fs.StringVar(p, flagName, *p, usage)
	}
}

// Int binds an integer setting.
func (b *Binder) Int(p *int, flagName, env string, def int, usage string) {
	usage = b.record(flagName, env, strconv.Itoa(def), usage, false)
	*p = def
	if v, ok := b.env(env); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.errs = append(b.errs, fmt.Errorf("%s=%q is not a whole number", env, v))
		} else {
			*p = n
		}
	}
	if flagName != "" {
		b.fs.IntVar(p, flagName, *p, usage)
	}
}

// Duration binds a duration setting ("30m", "24h").
func (b *Binder) Duration(p *time.Duration, flagName, env string, def time.Duration, usage string) {
	usage = b.record(flagName, env, def.String(), usage, false)
	*p = def
	if v, ok := b.env(env); ok {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			b.errs = append(b.errs, fmt.Errorf("%s=%q is not a duration such as 30m or 24h", env, v))
		} else {
			*p = d
		}
	}
	if flagName != "" {
		b.fs.DurationVar(p, flagName, *p, usage)
	}
}

// Err returns the first malformed environment value, if any.
func (b *Binder) Err() error {
	if len(b.errs) == 0 {
		return nil
	}
	return errors.Join(b.errs...)
}
