package devserver

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// serverLogger writes the embedded server's logs through an slog.Logger, so that they take the
// format (json or text) of flexcord's own logs and carry no stack traces.
//
// While the server starts and stops, its services come and go one after the other, and those
// running report the ones they cannot reach yet or any more ("Frontend is not healthy yet",
// "shard status unknown", "Not enough hosts to serve the request"): expected, and no use to
// anyone. So warnings and errors logged while the server starts are held back, and printed only
// if it fails to start (startLog.flush); those logged once it stops are logged at debug level.
type serverLogger struct {
	l        *slog.Logger
	min      slog.Level
	start    *startLog
	stopping *atomic.Bool
	attrs    []any
}

// startLog holds the warnings and errors of a server that is starting (at most maxHeld, the
// latest), until it is known whether it started.
type startLog struct {
	mu       sync.Mutex
	starting bool
	held     []heldLine
	dropped  int
}

type heldLine struct {
	l     *slog.Logger
	level slog.Level
	msg   string
	args  []any
}

const maxHeld = 200

func newStartLog() *startLog { return &startLog{starting: true} }

// hold keeps a line while the server starts and reports whether it did.
func (sl *startLog) hold(line heldLine) bool {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if !sl.starting {
		return false
	}
	if len(sl.held) == maxHeld {
		sl.held = sl.held[1:]
		sl.dropped++
	}
	sl.held = append(sl.held, line)
	return true
}

// started drops what was held: the server started, so it was transient.
func (sl *startLog) started() {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	sl.starting, sl.held = false, nil
}

// flush logs what was held, at its level: the server did not start, and this may say why.
func (sl *startLog) flush() {
	sl.mu.Lock()
	held, dropped := sl.held, sl.dropped
	sl.starting, sl.held = false, nil
	sl.mu.Unlock()
	if dropped > 0 && len(held) > 0 {
		held[0].l.Warn("earlier lines of the failed start are not shown", "lines", dropped)
	}
	for _, h := range held {
		h.l.Log(context.Background(), h.level, h.msg, h.args...)
	}
}

var (
	_ log.Logger     = (*serverLogger)(nil)
	_ log.WithLogger = (*serverLogger)(nil)
)

// newServerLogger returns a logger at level (debug, info, warn, error, fatal; default warn).
func newServerLogger(l *slog.Logger, level string, start *startLog, stopping *atomic.Bool) *serverLogger {
	if l == nil {
		l = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	min := slog.LevelWarn
	switch strings.ToLower(level) {
	case "debug":
		min = slog.LevelDebug
	case "info":
		min = slog.LevelInfo
	case "error":
		min = slog.LevelError
	case "fatal", "panic", "dpanic", "off", "none":
		min = slog.LevelError + 4
	}
	return &serverLogger{l: l.With("component", "temporal-server"), min: min, start: start, stopping: stopping}
}

// notForDev are warnings of the server that concern a production cluster, not one embedded for
// development; they are logged at info level.
var notForDev = []string{
	"HTTP API port has not been set", // Nexus, which flexcord does not use
}

func (s *serverLogger) log(level slog.Level, msg string, tags []tag.Tag) {
	if (level == slog.LevelWarn || level == slog.LevelError) && s.stopping.Load() {
		level = slog.LevelDebug
	}
	if level == slog.LevelWarn {
		for _, prefix := range notForDev {
			if strings.HasPrefix(msg, prefix) {
				level = slog.LevelInfo
			}
		}
	}
	if level < s.min || !s.l.Enabled(context.Background(), level) {
		return
	}
	args := make([]any, 0, len(s.attrs)+2*len(tags))
	args = append(args, s.attrs...)
	for _, t := range tags {
		args = append(args, tagAttr(t))
	}
	if level >= slog.LevelWarn && level < slog.LevelError+4 && s.start.hold(heldLine{s.l, level, msg, args}) {
		return
	}
	s.l.Log(context.Background(), level, msg, args...)
}

// tagAttr turns a server log tag into an attribute; errors and other values become strings.
func tagAttr(t tag.Tag) slog.Attr {
	switch v := t.Value().(type) {
	case string:
		return slog.String(t.Key(), v)
	case error:
		return slog.String(t.Key(), v.Error())
	case fmt.Stringer:
		return slog.String(t.Key(), v.String())
	default:
		return slog.Any(t.Key(), v)
	}
}

// Debug logs at debug level.
func (s *serverLogger) Debug(msg string, tags ...tag.Tag) { s.log(slog.LevelDebug, msg, tags) }

// Info logs at info level.
func (s *serverLogger) Info(msg string, tags ...tag.Tag) { s.log(slog.LevelInfo, msg, tags) }

// Warn logs at warn level.
func (s *serverLogger) Warn(msg string, tags ...tag.Tag) { s.log(slog.LevelWarn, msg, tags) }

// Error logs at error level.
func (s *serverLogger) Error(msg string, tags ...tag.Tag) { s.log(slog.LevelError, msg, tags) }

// DPanic logs at error level (the server panics on it only in development builds).
func (s *serverLogger) DPanic(msg string, tags ...tag.Tag) { s.log(slog.LevelError, msg, tags) }

// Panic logs at error level, then panics, as the server's own logger does.
func (s *serverLogger) Panic(msg string, tags ...tag.Tag) {
	s.log(slog.LevelError, msg, tags)
	panic(msg)
}

// Fatal logs at error level, then exits the process, as the server's own logger does.
func (s *serverLogger) Fatal(msg string, tags ...tag.Tag) {
	s.log(slog.LevelError+4, msg, tags)
	os.Exit(1)
}

// With returns a logger that adds tags to every line.
func (s *serverLogger) With(tags ...tag.Tag) log.Logger {
	c := *s
	c.attrs = append(append([]any(nil), s.attrs...), make([]any, 0, len(tags))...)
	for _, t := range tags {
		c.attrs = append(c.attrs, tagAttr(t))
	}
	return &c
}
