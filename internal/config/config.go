// Package config binds command-line flags to their environment-variable twins. Every setting can
// come from the environment (12-factor); a flag given on the command line wins. A malformed value
// fails start-up with one line naming the variable.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
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

// NewBinder binds flags on fs to the process environment. It also makes fs's help (-h) list
// the flags and then every variable bound or described on the binder, with its default. A Usage
// function set on fs before is printed first, as the command's introduction: it should not
// print the flags itself (flag.NewFlagSet's default Usage does; set Usage to nil for a plain
// "Usage of <name>:" line).
func NewBinder(fs *flag.FlagSet) *Binder {
	b := &Binder{fs: fs, lookup: os.LookupEnv}
	intro := fs.Usage
	fs.Usage = func() {
		w := fs.Output()
		if intro != nil {
			intro()
		} else {
			fmt.Fprintf(w, "Usage of %s:\n", fs.Name())
		}
		b.WriteHelp(w)
	}
	return b
}

// FlagSet returns the flag set the binder registers flags on.
func (b *Binder) FlagSet() *flag.FlagSet { return b.fs }

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

// Bool binds a boolean setting ("true", "false", "1", "0", as strconv.ParseBool reads them).
func (b *Binder) Bool(p *bool, flagName, env string, def bool, usage string) {
	usage = b.record(flagName, env, strconv.FormatBool(def), usage, false)
	*p = def
	if v, ok := b.env(env); ok {
		on, err := strconv.ParseBool(v)
		if err != nil {
			b.errs = append(b.errs, fmt.Errorf("%s=%q is not true or false", env, v))
		} else {
			*p = on
		}
	}
	if flagName != "" {
		b.fs.BoolVar(p, flagName, *p, usage)
	}
}

// Describe documents a variable that is read elsewhere (by a library such as the Temporal SDK's
// environment configuration, or by a pattern such as FLEXCORD_FEED_SECRET_<NAME>), so that the
// command's help lists it with the ones the binder reads itself.
func (b *Binder) Describe(env, def, usage string, secret bool) {
	b.Vars = append(b.Vars, Var{Env: env, Default: def, Usage: usage, Secret: secret})
}

// WriteHelp writes the flags (as flag.PrintDefaults does) and then every variable, once each,
// in registration order, with its default and the flag that overrides it.
func (b *Binder) WriteHelp(w io.Writer) {
	hasFlags := false
	b.fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintln(w, "\nFlags:")
		out := b.fs.Output()
		b.fs.SetOutput(w)
		b.fs.PrintDefaults()
		b.fs.SetOutput(out)
	}
	seen := map[string]bool{}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	n := 0
	for _, v := range b.Vars {
		if v.Env == "" || seen[v.Env] {
			continue
		}
		seen[v.Env] = true
		if n == 0 {
			fmt.Fprintln(w, "\nEnvironment variables (a flag given on the command line wins):")
		}
		n++
		def := "default " + v.Default
		if v.Default == "" {
			def = "unset"
		}
		var notes []string
		if v.Secret {
			notes = append(notes, "secret")
		}
		if v.Flag != "" {
			notes = append(notes, "flag -"+v.Flag)
		}
		usage := strings.ReplaceAll(v.Usage, "\n", " ")
		if len(notes) > 0 {
			usage += " (" + strings.Join(notes, "; ") + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Env, def, usage)
	}
	_ = tw.Flush()
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
