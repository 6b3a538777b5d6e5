package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"
)

// deadlineTimer keeps at most one timer running for the workflow's next deadline.
//
// A lazy timer (conversations of behaviourFastRelay and later) is not cancelled when its deadline
// moves later, which every message does to the inactivity deadline: the running timer fires at
// the earlier time, finds the deadline not due, and a new one is started for the rest. So a
// busy conversation starts about one timer per inactivity period instead of one per message
// (each of which cost a TimerCanceled and a TimerStarted event). A deadline that moves earlier
// or changes its purpose (label) still replaces the running timer.
type deadlineTimer struct {
	at     time.Time
	label  string
	cancel workflow.CancelFunc
	fired  bool
	lazy   bool
	// firesAt is when the running timer fires (zero: none runs); lazy timers only.
	firesAt time.Time
}

// arm makes sure a timer runs until at (zero: none). When it fires, fired becomes true.
func (t *deadlineTimer) arm(ctx workflow.Context, sel workflow.Selector, at time.Time, label string) {
	if t.lazy {
		t.armLazy(ctx, sel, at, label)
		return
	}
	if at.Equal(t.at) && label == t.label {
		return
	}
	if t.cancel != nil {
		t.cancel()
		t.cancel = nil
	}
	t.at, t.label, t.fired = at, label, false
	if at.IsZero() {
		return
	}
	d := at.Sub(workflow.Now(ctx))
	if d < time.Millisecond {
		d = time.Millisecond
	}
	tctx, cancel := workflow.WithCancel(ctx)
	t.cancel = cancel
	armedAt := at
	f := workflow.NewTimerWithOptions(tctx, d, workflow.TimerOptions{Summary: label})
	sel.AddFuture(f, func(f workflow.Future) {
		if f.Get(ctx, nil) == nil && t.at.Equal(armedAt) {
			t.fired = true
		}
	})
}

func (t *deadlineTimer) armLazy(ctx workflow.Context, sel workflow.Selector, at time.Time, label string) {
	running := !t.firesAt.IsZero()
	if at.Equal(t.at) && label == t.label && (running || t.fired) {
		return // already armed, or fired and waiting for due
	}
	if running && !at.IsZero() && label == t.label && !at.Before(t.firesAt) {
		// The running timer fires first; the deadline is looked at again then.
		t.at = at
		return
	}
	if running {
		t.cancel()
		t.cancel, t.firesAt = nil, time.Time{}
	}
	t.at, t.label, t.fired = at, label, false
	if at.IsZero() {
		return
	}
	d := at.Sub(workflow.Now(ctx))
	if d < time.Millisecond {
		d = time.Millisecond
	}
	tctx, cancel := workflow.WithCancel(ctx)
	t.cancel, t.firesAt = cancel, at
	firesAt := at
	f := workflow.NewTimerWithOptions(tctx, d, workflow.TimerOptions{Summary: label})
	sel.AddFuture(f, func(f workflow.Future) {
		if !t.firesAt.Equal(firesAt) {
			return // replaced, or already looked at by due
		}
		t.cancel, t.firesAt = nil, time.Time{}
		if f.Get(ctx, nil) == nil && !t.at.IsZero() && !t.at.After(firesAt) {
			t.fired = true
		}
	})
}

// due reports whether the armed deadline has passed, and disarms it if so.
func (t *deadlineTimer) due(ctx workflow.Context) bool {
	if t.at.IsZero() || (!t.fired && workflow.Now(ctx).Before(t.at)) {
		return false
	}
	// A lazy timer still running fires no later than now: nothing to cancel.
	t.at, t.label, t.fired, t.cancel, t.firesAt = time.Time{}, "", false, nil, time.Time{}
	return true
}

// waker lets update handlers, which run beside the main loop, wake the loop after they changed
// the state, so that it starts deliveries and re-arms deadlines at once.
type waker struct {
	ch workflow.Channel
}

func newWaker(ctx workflow.Context, sel workflow.Selector) waker {
	w := waker{ch: workflow.NewBufferedChannel(ctx, 1)}
	sel.AddReceive(w.ch, func(ch workflow.ReceiveChannel, more bool) {
		ch.ReceiveAsync(nil)
	})
	return w
}

// wake makes the main loop's next Select return; extra wake-ups are merged.
func (w waker) wake() { w.ch.SendAsync(struct{}{}) }
