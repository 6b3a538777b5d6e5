package config

import (
	"flag"
	"strings"
	"testing"
	"time"
)

func TestEnvDefaultsAndFlagOverrides(t *testing.T) {
	env := map[string]string{"APP_ADDR": ":9000", "APP_TIMEOUT": "45m", "APP_N": "7"}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	b := NewBinder(fs).WithLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	var addr, secret string
	var timeout time.Duration
	var n int
	b.String(&addr, "addr", "APP_ADDR", ":8080", "listen address")
	b.Duration(&timeout, "timeout", "APP_TIMEOUT", time.Minute, "timeout")
	b.Int(&n, "n", "APP_N", 1, "count")
	b.Secret(&secret, "", "APP_SECRET", "a secret")
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	if addr != ":9000" || timeout != 45*time.Minute || n != 7 {
		t.Fatalf("from env: %q %v %d", addr, timeout, n)
	}
	if err := fs.Parse([]string{"-addr", ":7000"}); err != nil {
		t.Fatal(err)
	}
	if addr != ":7000" {
		t.Fatalf("flag did not override env: %q", addr)
	}
	if len(b.Vars) != 4 || !b.Vars[3].Secret {
		t.Fatalf("vars = %+v", b.Vars)
	}
}

func TestMalformedValuesNameTheVariable(t *testing.T) {
	env := map[string]string{"APP_TIMEOUT": "soon", "APP_N": "many"}
	b := NewBinder(flag.NewFlagSet("t", flag.ContinueOnError)).WithLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	var d time.Duration
	var n int
	b.Duration(&d, "timeout", "APP_TIMEOUT", time.Minute, "")
	b.Int(&n, "n", "APP_N", 1, "")
	err := b.Err()
	if err == nil || !strings.Contains(err.Error(), "APP_TIMEOUT") || !strings.Contains(err.Error(), "APP_N") {
		t.Fatalf("err = %v", err)
	}
}

func TestBoolAndHelp(t *testing.T) {
	env := map[string]string{"APP_ON": "true", "APP_BAD": "maybe"}
	fs := flag.NewFlagSet("app", flag.ContinueOnError)
	fs.Usage = func() { fs.Output().Write([]byte("Usage: app [flags]\n")) }
	var out strings.Builder
	fs.SetOutput(&out)
	b := NewBinder(fs).WithLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	var on, bad, off bool
	var addr, token string
	b.Bool(&on, "on", "APP_ON", false, "switch")
	b.Bool(&off, "off", "APP_OFF", true, "another switch")
	b.Bool(&bad, "bad", "APP_BAD", false, "malformed")
	b.String(&addr, "addr", "APP_ADDR", ":8080", "listen address")
	b.Secret(&token, "", "APP_TOKEN", "a token")
	b.Describe("OTHER_ADDRESS", "localhost:7233", "read by a library", false)
	b.Describe("APP_ADDR", "", "listed once", false)
	if !on || !off {
		t.Fatalf("on=%v off=%v", on, off)
	}
	if err := b.Err(); err == nil || !strings.Contains(err.Error(), "APP_BAD") {
		t.Fatalf("err = %v", err)
	}
	if err := fs.Parse([]string{"-h"}); err != flag.ErrHelp {
		t.Fatalf("parse -h: %v", err)
	}
	help := out.String()
	for _, want := range []string{
		"Usage: app [flags]\n", "\nFlags:\n", "  -addr string",
		"\nEnvironment variables", "  APP_ON ", "default false", "  APP_ADDR ", "default :8080", "(flag -addr)",
		"  APP_TOKEN ", "unset", "(secret)", "  OTHER_ADDRESS ", "default localhost:7233", "read by a library",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	if strings.Count(help, "  APP_ADDR ") != 1 || strings.Contains(help, "listed once") {
		t.Errorf("APP_ADDR listed twice:\n%s", help)
	}
}
