package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/flexcord/flexcord/internal/config"
	"github.com/flexcord/flexcord/internal/telemetry"
	"github.com/flexcord/flexcord/workflows"
)

// common holds the settings every long-running command shares.
type common struct {
	logFormat, logLevel string
	conv                workflows.ConversationOptions
	maxInFlight         int
}

func (c *common) bind(b *config.Binder) {
	b.String(&c.logFormat, "log-format", "FLEXCORD_LOG_FORMAT", "json", "log format: json or text")
	b.String(&c.logLevel, "log-level", "FLEXCORD_LOG_LEVEL", "info", "log level: debug, info, warn or error")
}

func (c *common) bindConversation(b *config.Binder) {
	b.Duration(&c.conv.InactivityTimeout, "inactivity-timeout", "FLEXCORD_INACTIVITY_TIMEOUT", 30*time.Minute, "close a conversation still with the bot after this long without a message")
	b.Duration(&c.conv.RatingTimeout, "rating-timeout", "FLEXCORD_RATING_TIMEOUT", 24*time.Hour, "how long a resolved conversation waits for the member's rating")
	b.Duration(&c.conv.QueueTimeout, "queue-timeout", "FLEXCORD_QUEUE_TIMEOUT", 10*time.Minute, "tell a member no agent is free after this long in the queue, and offer to keep waiting or leave a message")
	b.Duration(&c.conv.ChoiceTimeout, "choice-timeout", "FLEXCORD_CHOICE_TIMEOUT", 30*time.Minute, "leave a message for a member who chose neither after no agent was free")
	b.Duration(&c.conv.LiveCheckAfter, "live-check-after", "FLEXCORD_LIVE_CHECK_AFTER", time.Hour, "check that Flex still has a live chat after this long with no message either way")
	b.Duration(&c.conv.LiveMaxSilence, "live-max-silence", "FLEXCORD_LIVE_MAX_SILENCE", 24*time.Hour, "resolve a live chat with no message either way for this long")
	b.Int(&c.conv.ContinueAsNewAfter, "continue-as-new-after", "FLEXCORD_CONTINUE_AS_NEW_AFTER", 2000, "signals per workflow run before it continues as new")
}

func (c *common) bindIngress(b *config.Binder) {
	b.Int(&c.maxInFlight, "max-inflight-signals", "FLEXCORD_MAX_INFLIGHT_SIGNALS", 256, "signals ingress sends to Temporal at once before answering 503")
}

func (c *common) logger(w io.Writer) (*slog.Logger, error) {
	return telemetry.NewLogger(w, c.logFormat, c.logLevel)
}

// parse parses args and reports malformed environment values, one line each.
func parse(fs *flag.FlagSet, b *config.Binder, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := b.Err(); err != nil {
		return fmt.Errorf("bad setting: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("flexcord "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// discardLogger is for short-lived operator commands, whose output is their answer.
func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
