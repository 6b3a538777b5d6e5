package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// temporalVars and telemetryVars are read by every command that talks to Temporal, and by the
// long-running ones.
var (
	temporalVars = []string{
		"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_TLS",
		"TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH", "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
		"TEMPORAL_TLS_SERVER_NAME", "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION", "TEMPORAL_PROFILE", "TEMPORAL_CONFIG_FILE",
	}
	telemetryVars = []string{"OTEL_EXPORTER_OTLP_ENDPOINT"}
	logVars       = []string{"FLEXCORD_LOG_FORMAT", "FLEXCORD_LOG_LEVEL"}
	discordVars   = []string{"DISCORD_TOKEN", "DISCORD_APPLICATION_ID", "DISCORD_PUBLIC_KEY", "DISCORD_SHARD_ID", "DISCORD_SHARD_COUNT"}
	twilioVars    = []string{
		"TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY", "TWILIO_API_SECRET",
		"TWILIO_FLEX_WORKSPACE_SID", "TWILIO_FLEX_WORKFLOW_SID", "FLEXCORD_PUBLIC_URL",
		"FLEXCORD_FLEX_INACTIVE_TIMER", "FLEXCORD_FLEX_CLOSED_TIMER",
	}
	conversationVars = []string{
		"FLEXCORD_INACTIVITY_TIMEOUT", "FLEXCORD_RATING_TIMEOUT", "FLEXCORD_QUEUE_TIMEOUT", "FLEXCORD_CHOICE_TIMEOUT",
		"FLEXCORD_LIVE_CHECK_AFTER", "FLEXCORD_LIVE_MAX_SILENCE", "FLEXCORD_CONTINUE_AS_NEW_AFTER",
	}
)

func concat(lists ...[]string) []string { return slices.Concat(lists...) }

// helpCase is a command line whose -h must list vars, and defaults it must show ("NAME VALUE").
type helpCase struct {
	args     []string
	vars     []string
	defaults map[string]string
}

// productionHelp are the commands of every build.
var productionHelp = []helpCase{
	{[]string{"worker"}, concat(logVars, discordVars, twilioVars, temporalVars, telemetryVars,
		[]string{"FLEXCORD_HTTP_ADDR", "FLEXCORD_SANDBOX_URL", "KB_DIR", "FLEXCORD_FEEDS_FILE", "FLEXCORD_DEPLOYMENT_NAME", "FLEXCORD_BUILD_ID"}),
		map[string]string{"FLEXCORD_HTTP_ADDR": ":8082", "TEMPORAL_ADDRESS": "localhost:7233", "FLEXCORD_LOG_FORMAT": "json"}},
	{[]string{"ingress"}, concat(logVars, discordVars, twilioVars, conversationVars, temporalVars, telemetryVars,
		[]string{"FLEXCORD_HTTP_ADDR", "FLEXCORD_SANDBOX_URL", "FLEXCORD_INGRESS_GATEWAY", "FLEXCORD_MAX_INFLIGHT_SIGNALS", "FLEXCORD_MAX_BACKLOG_AGE", "FLEXCORD_FEED_SECRET_<NAME>"}),
		map[string]string{"FLEXCORD_HTTP_ADDR": ":8080", "FLEXCORD_INGRESS_GATEWAY": "false", "FLEXCORD_MAX_INFLIGHT_SIGNALS": "256", "FLEXCORD_MAX_BACKLOG_AGE": "30s"}},
	{[]string{"gateway"}, concat(logVars, discordVars, conversationVars, temporalVars, telemetryVars,
		[]string{"FLEXCORD_HTTP_ADDR", "FLEXCORD_SANDBOX_URL", "FLEXCORD_MAX_INFLIGHT_SIGNALS", "FLEXCORD_MAX_BACKLOG_AGE"}),
		map[string]string{"FLEXCORD_HTTP_ADDR": ":8081", "DISCORD_SHARD_ID": "0", "DISCORD_SHARD_COUNT": "1", "FLEXCORD_MAX_BACKLOG_AGE": "30s"}},
	{[]string{"discord", "register-commands"}, []string{"DISCORD_TOKEN", "DISCORD_APPLICATION_ID"}, nil},
	{[]string{"flex", "setup"}, twilioVars, nil},
	{[]string{"deliveries", "retry"}, temporalVars, nil},
	{[]string{"cases", "list"}, temporalVars, nil},
	{[]string{"cases", "show"}, temporalVars, nil},
	{[]string{"cases", "set-status"}, temporalVars, nil},
	{[]string{"conversations", "list"}, temporalVars, nil},
	{[]string{"conversations", "show"}, temporalVars, nil},
	{[]string{"conversations", "close"}, temporalVars, nil},
	{[]string{"feeds", "list"}, temporalVars, nil},
	{[]string{"feeds", "add"}, temporalVars, nil},
	{[]string{"kb", "check"}, []string{"KB_DIR"}, nil},
}

// checkHelp runs each command with -h and checks that its help lists every variable of the case
// in its "Environment variables" section, with the defaults given.
func checkHelp(t *testing.T, cases []helpCase) {
	t.Helper()
	for _, c := range cases {
		name := strings.Join(c.args, " ")
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), append(slices.Clone(c.args), "-h"), &out, &errb)
			if !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("flexcord %s -h: %v, want flag.ErrHelp", name, err)
			}
			help := out.String() + errb.String()
			_, vars, ok := strings.Cut(help, "Environment variables")
			if !ok {
				t.Fatalf("flexcord %s -h lists no environment variables:\n%s", name, help)
			}
			for _, v := range c.vars {
				if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(v) + ` `).MatchString(vars) {
					t.Errorf("flexcord %s -h does not list %s", name, v)
				}
			}
			for v, def := range c.defaults {
				if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(v) + ` +default ` + regexp.QuoteMeta(def) + ` `).MatchString(vars) {
					t.Errorf("flexcord %s -h does not give %s's default %s", name, v, def)
				}
			}
			if t.Failed() {
				t.Logf("help:\n%s", help)
			}
		})
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	checkHelp(t, productionHelp)
}

// TestEveryVariableReadIsDocumented finds the environment variables the command's sources name
// and checks that some command's -h lists each.
func TestEveryVariableReadIsDocumented(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{}
	envName := regexp.MustCompile(`"((?:FLEXCORD|DISCORD|TWILIO|TEMPORAL|OTEL|KB)_[A-Z0-9_]*(?:<NAME>)?)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.HasPrefix(src, []byte("//go:build dev\n")) && !devBuild || bytes.HasPrefix(src, []byte("//go:build !dev\n")) && devBuild {
			continue // not in this build
		}
		for _, m := range envName.FindAllStringSubmatch(string(src), -1) {
			named[m[1]] = true
		}
	}
	if len(named) < 40 {
		t.Fatalf("found only %d variable names in the sources: %v", len(named), named)
	}
	var all strings.Builder
	for _, cmd := range commands() {
		for _, sub := range [][]string{nil, {"list"}, {"retry"}, {"register-commands"}, {"setup"}, {"check"}} {
			var out, errb bytes.Buffer
			_ = cmd(context.Background(), append(sub, "-h"), &out, &errb)
			all.WriteString(out.String() + errb.String())
		}
	}
	for v := range named {
		if !strings.Contains(all.String(), "  "+v+" ") {
			t.Errorf("%s is read but no command's -h lists it", v)
		}
	}
}

// TestWorkerVersioningNeedsBothVariables checks that a worker given only one of the two Worker
// Versioning variables refuses to start, naming both.
func TestWorkerVersioningNeedsBothVariables(t *testing.T) {
	for _, env := range []string{"FLEXCORD_DEPLOYMENT_NAME", "FLEXCORD_BUILD_ID"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv("FLEXCORD_DEPLOYMENT_NAME", "")
			t.Setenv("FLEXCORD_BUILD_ID", "")
			t.Setenv(env, "flexcord")
			var out, errb bytes.Buffer
			err := run(context.Background(), []string{"worker", "-http-addr", "127.0.0.1:0"}, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), "FLEXCORD_DEPLOYMENT_NAME and FLEXCORD_BUILD_ID") {
				t.Errorf("worker with only %s set: %v, want an error naming both variables", env, err)
			}
		})
	}
}
