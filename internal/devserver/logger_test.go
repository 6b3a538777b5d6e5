package devserver

import (
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"go.temporal.io/server/common/log/tag"
)

func TestServerLoggerQuietWhileStartingAndStopping(t *testing.T) {
	var out strings.Builder
	l := slog.New(slog.NewTextHandler(&out, nil))
	start, stopping := newStartLog(), new(atomic.Bool)
	log := newServerLogger(l, "warn", start, stopping).With(tag.NewStringTag("service", "history"))

	log.Error("Queue reader unable to retrieve tasks", tag.NewErrorTag("error", errors.New("shard status unknown")))
	log.Warn("HTTP API port has not been set. Nexus HTTP endpoints will not be available.")
	log.Info("not shown below warn")
	if out.Len() != 0 {
		t.Fatalf("logged while starting:\n%s", out.String())
	}
	start.started()
	log.Error("a real error", tag.NewErrorTag("error", errors.New("disk full")))
	if got := out.String(); !strings.Contains(got, `level=ERROR msg="a real error" component=temporal-server service=history error="disk full"`) || strings.Contains(got, "shard status") {
		t.Fatalf("after start:\n%s", got)
	}
	out.Reset()
	stopping.Store(true)
	log.Error("Not enough hosts to serve the request")
	if out.Len() != 0 {
		t.Fatalf("logged while stopping:\n%s", out.String())
	}

	// A start that fails shows what it held.
	out.Reset()
	failed := newStartLog()
	newServerLogger(l, "warn", failed, new(atomic.Bool)).Error("cannot open the database")
	failed.flush()
	if !strings.Contains(out.String(), "cannot open the database") {
		t.Fatalf("a failed start's lines were not shown: %q", out.String())
	}
}
