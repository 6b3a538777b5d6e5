// Command flexcord runs flexcord: Discord community support wired to Twilio Flex through durable
// Temporal workflows. One binary, several subcommands:
//
//	flexcord dev       the whole system in one process (embedded Temporal server and UI, worker,
//	                   ingress; local emulators when no Discord/Twilio credentials are set)
//	flexcord worker    workflows and activities, against a Temporal cluster
//	flexcord ingress   the HTTP and gateway front door, against a Temporal cluster
//	flexcord discord, flex, deliveries, cases, conversations, feeds, kb   setup and operator tools
//	flexcord version   the version
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
  flexcord dev                    run everything locally (embedded Temporal, UI, worker, ingress)
  flexcord worker                 run the worker against a Temporal cluster
  flexcord ingress                run the HTTP front door against a Temporal cluster
  flexcord discord register-commands [--guild ID]
                                  register /helpme, /bug and /new_feature with Discord
  flexcord flex setup             point the Flex TaskRouter workspace at ingress
  flexcord deliveries retry ID|--all
                                  re-queue failed deliveries
  flexcord cases list|show|set-status
                                  list, inspect and move support cases, bug reports, feature requests
  flexcord conversations list|show|close
                                  list, inspect and close members' support conversations
  flexcord feeds add|list|show|pause|resume|run|remove
                                  manage the #announcements sources (feeds polled by Schedules)
  flexcord kb eval|check          evaluate or check the knowledge base
  flexcord version                print the version

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
	register("dev", devCommand)
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
