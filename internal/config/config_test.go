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
