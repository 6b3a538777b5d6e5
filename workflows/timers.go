package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"
)

// deadlineTimer keeps at most one timer running for the workflow's next deadline.
type deadlineTimer struct {
	at     time.Time
	label  string
	cancel workflow.CancelFunc
	fired  bool
}

// arm makes sure a timer runs until at (zero: none). When it fires, fired becomes true.
func (t *deadlineTimer) arm(ctx workflow.Context, sel workflow.Selector, at time.Time, label string) {
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

// due reports whether the armed deadline has passed, and disarms it if so.
func (t *deadlineTimer) due(ctx workflow.Context) bool {
	if t.at.IsZero() || (!t.fired && workflow.Now(ctx).Before(t.at)) {
		return false
	}
	t.at, t.label, t.fired, t.cancel = time.Time{}, "", false, nil
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
