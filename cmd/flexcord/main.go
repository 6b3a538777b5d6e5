// Command flexcord runs flexcord: Discord community support wired to Twilio Flex through durable
// Temporal workflows. One binary, several subcommands:
//
//	flexcord worker    workflows and activities, against a Temporal cluster
//	flexcord ingress   the HTTP front door (interactions, webhooks), against a Temporal cluster
//	flexcord gateway   the Discord gateway connection, one process per shard
//	flexcord discord, flex, deliveries, cases, conversations, members, feeds, kb   setup and operator tools
//	flexcord version   the version
//
// The development build (go build -tags dev, as `make build` does) adds:
//
//	flexcord dev       the whole system in one process (embedded Temporal server and UI, worker,
//	                   ingress, gateway; local emulators when no Discord/Twilio credentials are set)
//	flexcord sandbox   the Discord and Twilio emulators and the sandbox page, for roles run apart
//	flexcord temporal  the embedded Temporal server and UI alone
//
// Every flag has an environment-variable twin; run a subcommand with -h to see them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "flexcord:", err)
		os.Exit(1)
	}
}

const usage = `flexcord: Discord community support wired to Twilio Flex through Temporal workflows.

Usage:
  flexcord worker                 run the worker against a Temporal cluster
  flexcord ingress                run the HTTP front door (interactions, webhooks) against a Temporal cluster
  flexcord gateway                hold the Discord gateway connection (DMs) for one shard
  flexcord discord register-commands [--guild ID]
                                  register /helpme, /bug and /new_feature with Discord
  flexcord flex setup             point the Flex TaskRouter workspace at ingress
  flexcord deliveries retry ID|--all
                                  re-queue failed deliveries
  flexcord cases list|show|set-status|transcript
                                  list, inspect and move support cases, bug reports, feature requests;
                                  print a case's transcript
  flexcord conversations list|show|close
                                  list, inspect and close members' support conversations
  flexcord members erase USER_ID  erase a member: close and delete their conversations and cases,
                                  delete their transcripts and attachments
  flexcord feeds add|list|show|pause|resume|run|remove
                                  manage the #announcements sources (feeds polled by Schedules)
  flexcord kb eval|check          evaluate or check the knowledge base
  flexcord version                print the version

Development build only (make build, or go build -tags dev ./cmd/flexcord):
  flexcord dev                    run everything locally (embedded Temporal, UI, worker, ingress, gateway)
  flexcord sandbox                run the Discord and Twilio emulators and the sandbox page alone
  flexcord temporal               run the embedded Temporal server and UI alone

Run "flexcord <command> -h" for a command's flags and environment variables.
`

// command is one subcommand.
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// registry holds every subcommand. Files that add one register it in an init function.
var registry = map[string]command{}

func register(name string, cmd command) {
	if _, dup := registry[name]; dup {
		panic("flexcord: command " + name + " registered twice")
	}
	registry[name] = cmd
}

func init() {
	register("worker", workerCommand)
	register("ingress", ingressCommand)
	register("version", versionCommand)
	register("kb", kbCommand)
}

func commands() map[string]command { return registry }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
	return cmd(ctx, args[1:], stdout, stderr)
}

// Version returns the build's version: the -ldflags value, else the module version, else "dev".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func versionCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fmt.Fprintln(stdout, "flexcord", Version())
	return nil
}
