package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"golang.org/x/sync/errgroup"

	"github.com/flexcord/flexcord/sandbox/twilioemu"
)

// mode is how a phase offers messages.
type mode int

const (
	// paced: every conversation sends one message each way every thinkTime (± thinkJitter),
	// whether or not the previous one arrived.
	paced mode = iota
	// saturated: every conversation sends its next message each way as soon as the previous
	// one arrived, so the system runs as fast as it takes them.
	saturated
	// overload: a fixed rate per direction (twice what saturated reached), spread over the
	// conversations in turn.
	overload
)

func (m mode) String() string {
	return [...]string{"paced", "saturated", "overload"}[m]
}

// Think time of paced phases.
const (
	thinkTime   = time.Second
	thinkJitter = 250 * time.Millisecond
)

// scenario is one phase to run.
type scenario struct {
	mode  mode
	convs int
	dur   time.Duration
	rate  [2]float64 // overload: offered messages per second, per direction
}

// phaseResult is what one phase of one path measured.
type phaseResult struct {
	path   string
	sc     scenario
	id     int
	window time.Duration // how long messages were sent
	dirs   [2]dirResult
	// cpu is the process CPU time from the start of the phase to its last arrival; msgs is the
	// messages that arrived, both ways.
	cpu  time.Duration
	msgs int
	// cpuWall is the wall time cpu was measured over; idle the CPU the process used per second
	// with no traffic, measured before the phase's group.
	cpuWall time.Duration
	idle    float64
	// events is the growth of the histories of the phase's workflows, -1 when not counted.
	events int64
	// drain is the time from the end of sending to the last arrival.
	drain    time.Duration
	sendErrs int
	// stoppedEarly says why a paced phase stopped sending before its time, if it did.
	stoppedEarly string
	offered      [2]float64 // messages per second actually offered
}

// dirResult is what one direction of one phase measured.
type dirResult struct {
	// sent counts the messages sent; arrived those that arrived at least once; lost those
	// accepted that never arrived; dup the extra arrivals; reordered the arrivals that came
	// after a later message of the same conversation; misrouted those that reached another
	// conversation.
	sent, arrived, lost, dup, reordered, misrouted int
	// refusedMsgs counts agent messages whose webhook Twilio gave up on (every attempt failed):
	// not accepted. arrivedAnyway counts those of them that arrived all the same (a refused or
	// timed-out attempt had signalled); pending those whose webhook was still being retried.
	refusedMsgs, arrivedAnyway, pending int
	// Webhook attempts (agent→member): all, refused with 429/503, refusals without
	// Retry-After, other failures (other statuses, timeouts, no answer).
	attempts, refusedAttempts, noRetryAfter, otherFailures int
	// lat is the latency of every message that arrived, sorted; noSample counts arrivals that
	// the event streams missed (they have no latency).
	lat      []time.Duration
	noSample int
	// rate is the messages that arrived per second, from the start of the phase to its last
	// arrival (or the end of sending, if later).
	rate float64
	// stall is the longest time one conversation saw nothing arrive while it had messages
	// outstanding.
	stall time.Duration
	// streamOnly counts arrivals the event streams reported that the emulators' stores do not
	// hold (the harness's own consistency check; always 0).
	streamOnly int
}

// cpuTime is the CPU time the process used so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// send sends one message of conversation c in direction d as the member or the agent.
func (p *path) send(d direction, c int, text string) error {
	ch := p.chats[c]
	if d == toAgent {
		_, err := p.dc.SendDM(ch.member.ID, text)
		return err
	}
	_, err := p.tw.SendAgentMessage(ch.taskSID, text)
	return err
}

// runPhase runs one phase on path p and measures it. cpuProfile, when set, is written with a CPU
// profile of the phase.
func (e *env) runPhase(ctx context.Context, p *path, sc scenario, cpuProfile string) (*phaseResult, error) {
	if sc.convs > len(p.chats) {
		return nil, fmt.Errorf("%s has %d chats, the phase needs %d", p.name, len(p.chats), sc.convs)
	}
	runtime.GC()
	var before map[string]histMark
	if p.workflowIDs != nil {
		var err error
		if before, err = e.settledHistories(ctx, p, sc.convs); err != nil {
			return nil, err
		}
	}
	log := e.tr.newPhase(sc.convs)
	res := &phaseResult{path: p.name, sc: sc, id: log.id, events: -1}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}

	cpu0 := cpuTime()
	start := time.Now()
	deadline := start.Add(sc.dur)
	var sendErrs atomic.Int64
	var sentCount [2]atomic.Int64
	sendOne := func(d direction, c int) (int, bool) {
		seq := log.register(d, c)
		if err := p.send(d, c, tag(log.id, d, c, seq)); err != nil {
			log.sendFailed(d, c, seq)
			if sendErrs.Add(1) <= 3 {
				e.logf("%s: send %s c%d: %v", p.name, d, c, err)
			}
			return seq, false
		}
		sentCount[d].Add(1)
		return seq, true
	}
	var wg sync.WaitGroup
	switch sc.mode {
	case paced:
		// A paced load the path cannot keep up with only grows its backlog: stop sending once
		// the conversations have more than two messages each outstanding on average.
		sendCtx, stopSending := context.WithCancel(ctx)
		defer stopSending()
		limit := max(200, 4*sc.convs)
		var monitor sync.WaitGroup
		monitor.Go(func() {
			for sleepCtx(sendCtx, 50*time.Millisecond) {
				if sent, arrived, _ := log.progress(); sent-arrived > limit {
					res.stoppedEarly = fmt.Sprintf("stopped sending after %.1f s: over %d messages outstanding", time.Since(start).Seconds(), limit)
					stopSending()
				}
			}
		})
		defer monitor.Wait()
		for d := range 2 {
			for c := range sc.convs {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(2*c+d)))
					jitter := func() time.Duration {
						return thinkTime - thinkJitter + time.Duration(rng.Int64N(int64(2*thinkJitter)))
					}
					next := start.Add(time.Duration(rng.Int64N(int64(thinkTime))))
					for next.Before(deadline) {
						if !sleepCtx(sendCtx, time.Until(next)) {
							return
						}
						sendOne(direction(d), c)
						next = next.Add(jitter())
					}
				})
			}
		}
		wg.Wait()
		stopSending()
	case saturated:
		for d := range 2 {
			for c := range sc.convs {
				notify := log.streams[d][c].notify
				wg.Go(func() {
					timer := time.NewTimer(time.Until(deadline))
					defer timer.Stop()
					for time.Now().Before(deadline) {
						seq, ok := sendOne(direction(d), c)
						if !ok {
							time.Sleep(10 * time.Millisecond)
							continue
						}
						for !log.hasArrived(direction(d), c, seq) {
							select {
							case <-notify:
							case <-timer.C:
								return
							}
						}
					}
				})
			}
		}
	case overload:
		for d := range 2 {
			if sc.rate[d] <= 0 {
				continue
			}
			wg.Go(func() {
				interval := time.Duration(float64(time.Second) / sc.rate[d])
				for k := 0; ; k++ {
					due := start.Add(time.Duration(k) * interval)
					if !due.Before(deadline) {
						return
					}
					if wait := time.Until(due); wait > 0 {
						time.Sleep(wait)
					}
					sendOne(direction(d), k%sc.convs)
				}
			})
		}
	}
	wg.Wait()
	sendEnd := time.Now()
	res.window = sendEnd.Sub(start)
	for d := range 2 {
		res.offered[d] = float64(sentCount[d].Load()) / res.window.Seconds()
	}

	// Drain: until everything sent arrived, or nothing arrived for a while (a refused webhook is
	// retried up to 10 s apart).
	quiet := 5 * time.Second
	if sc.mode == overload {
		quiet = 20 * time.Second
	}
	const maxDrain = 3 * time.Minute
	lastCount, lastChange, cpuAtLast, wallAtLast := -1, sendEnd, cpuTime(), time.Now()
	for {
		sent, arrived, _ := log.progress()
		now := time.Now()
		if arrived != lastCount {
			lastCount, lastChange, cpuAtLast, wallAtLast = arrived, now, cpuTime(), now
		}
		if arrived >= sent || now.Sub(lastChange) > quiet || now.Sub(sendEnd) > maxDrain {
			break
		}
		if !sleepCtx(ctx, 20*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
	res.cpu, res.cpuWall = cpuAtLast-cpu0, wallAtLast.Sub(start)
	res.sendErrs = int(sendErrs.Load())
	if cpuProfile != "" {
		pprof.StopCPUProfile()
	}

	if p.workflowIDs != nil {
		after, err := e.settledHistories(ctx, p, sc.convs)
		if err != nil {
			return nil, err
		}
		if res.events, err = e.historyGrowth(ctx, before, after); err != nil {
			return nil, err
		}
	}
	_, _, last := log.progress()
	if last.After(sendEnd) {
		res.drain = last.Sub(sendEnd)
	}
	e.reconcile(p, log, res, start, sendEnd, maxTime(last, sendEnd))
	for d := range res.dirs {
		res.msgs += res.dirs[d].arrived
	}
	return res, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// reconcile counts what arrived from the emulators' own stores (the event streams can drop
// events under load; the stores cannot), checks it against what was sent, and computes rates,
// latencies and stalls.
func (e *env) reconcile(p *path, log *phaseLog, res *phaseResult, start, sendEnd, end time.Time) {
	n := res.sc.convs
	var order [2][][]int // arrival order of sequence numbers, per conversation
	for d := range order {
		order[d] = make([][]int, n)
	}
	for c := range n {
		msgs, _ := p.tw.ConversationMessages(p.chats[c].convSID)
		for _, m := range msgs {
			k, ok := parseTag(m.Body)
			if !ok || k.phase != log.id || k.dir != toAgent {
				continue
			}
			if k.conv != c {
				res.dirs[toAgent].misrouted++
				continue
			}
			order[toAgent][c] = append(order[toAgent][c], k.seq)
		}
	}
	recs := p.dc.AllMessages(p.discordMark)
	if len(recs) > 0 {
		p.discordMark = recs[len(recs)-1].Seq
	}
	for _, r := range recs {
		if !r.FromBot {
			continue
		}
		k, ok := parseTag(r.Message.Content)
		if !ok || k.phase != log.id || k.dir != toMember {
			continue
		}
		if k.conv < 0 || k.conv >= n || r.Message.ChannelID != p.chats[k.conv].dmChannel {
			res.dirs[toMember].misrouted++
			continue
		}
		order[toMember][k.conv] = append(order[toMember][k.conv], k.seq)
	}

	// Agent messages whose webhook was given up (never accepted), or is still being retried.
	type msgID struct{ conv, seq int }
	refused, pending := map[msgID]bool{}, map[msgID]bool{}
	dr := &res.dirs[toMember]
	for _, d := range p.tw.Deliveries() {
		if d.Kind != twilioemu.KindConversations || d.EventType != "onMessageAdded" {
			continue
		}
		k, ok := parseTag(d.Params.Get("Body"))
		if !ok || k.phase != log.id || k.dir != toMember {
			continue
		}
		dr.attempts += d.Attempts
		if p.hooks != nil {
			hs := p.hooks.stat(d.Token)
			dr.refusedAttempts += hs.refused
			dr.noRetryAfter += hs.noRetryAfter
			dr.otherFailures += d.Attempts - hs.attempts + hs.other // attempts ingress never answered in time
		}
		switch d.State {
		case twilioemu.DeliveryFailed:
			refused[msgID{k.conv, k.seq}] = true
		case twilioemu.DeliveryPending:
			pending[msgID{k.conv, k.seq}] = true
		}
	}

	snap := log.snapshot()
	for d := range 2 {
		r := &res.dirs[d]
		for c := range n {
			counts := map[int]int{}
			hi := -1
			for _, seq := range order[d][c] {
				counts[seq]++
				if seq < hi {
					r.reordered++
				}
				hi = max(hi, seq)
			}
			type point struct {
				at     time.Time
				arrive bool
			}
			var points []point
			for seq, m := range snap[d][c] {
				if m.sendErr {
					continue
				}
				r.sent++
				got := counts[seq]
				id := msgID{c, seq}
				expected := !refused[id] && !pending[id]
				switch {
				case refused[id]:
					r.refusedMsgs++
					if got > 0 {
						r.arrivedAnyway++
					}
				case pending[id] && got == 0:
					r.pending++
				case got == 0:
					r.lost++
				}
				if got > 0 {
					r.arrived++
					r.dup += got - 1
				}
				if m.arrivals > 0 && got == 0 {
					r.streamOnly++
				}
				switch {
				case m.arrivals > 0:
					r.lat = append(r.lat, m.arrived.Sub(m.sent))
					if expected || got > 0 {
						points = append(points, point{m.sent, false}, point{m.arrived, true})
					}
				case got > 0:
					r.noSample++ // arrived, but its time is unknown: left out of the stalls
				case expected:
					points = append(points, point{m.sent, false}) // never arrived: outstanding to the end
				}
			}
			// The longest time with messages outstanding and nothing arriving.
			slices.SortStableFunc(points, func(a, b point) int {
				if c := a.at.Compare(b.at); c != 0 {
					return c
				}
				switch {
				case a.arrive == b.arrive:
					return 0
				case !a.arrive:
					return -1 // a send before an arrival at the same instant
				}
				return 1
			})
			outstanding := 0
			var since time.Time
			for _, pt := range points {
				if !pt.arrive {
					if outstanding == 0 {
						since = pt.at
					}
					outstanding++
					continue
				}
				if outstanding > 0 {
					r.stall = max(r.stall, pt.at.Sub(since))
					outstanding--
				}
				since = pt.at
			}
			if outstanding > 0 {
				r.stall = max(r.stall, end.Sub(since))
			}
		}
		slices.Sort(r.lat)
		if span := end.Sub(start); span > 0 {
			r.rate = float64(r.arrived) / span.Seconds()
		}
	}
}

// idleCPU measures the CPU the process uses per second of wall time while no message is sent.
func idleCPU(ctx context.Context, d time.Duration) float64 {
	runtime.GC()
	cpu0, t0 := cpuTime(), time.Now()
	sleepCtx(ctx, d)
	return float64(cpuTime()-cpu0) / float64(time.Since(t0))
}

// histMark is a workflow's current run and the length of its history.
type histMark struct {
	run    string
	length int64
}

// histories describes the workflows of the first n chats of p.
func (e *env) histories(ctx context.Context, p *path, n int) (map[string]histMark, error) {
	var ids []string
	for _, c := range p.chats[:n] {
		ids = append(ids, p.workflowIDs(c)...)
	}
	out := make(map[string]histMark, len(ids))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, id := range ids {
		g.Go(func() error {
			d, err := e.st.Client.DescribeWorkflowExecution(gctx, id, "")
			if err != nil {
				return fmt.Errorf("describe %s: %w", id, err)
			}
			mu.Lock()
			out[id] = histMark{run: d.GetWorkflowExecutionInfo().GetExecution().GetRunId(), length: d.GetWorkflowExecutionInfo().GetHistoryLength()}
			mu.Unlock()
			return nil
		})
	}
	return out, g.Wait()
}

// settledHistories describes the workflows until their histories stop growing (the last
// deliveries' completions are recorded shortly after they arrive), at most for ten seconds.
func (e *env) settledHistories(ctx context.Context, p *path, n int) (map[string]histMark, error) {
	prev, err := e.histories(ctx, p, n)
	if err != nil {
		return nil, err
	}
	for range 10 {
		if !sleepCtx(ctx, time.Second) {
			return nil, ctx.Err()
		}
		cur, err := e.histories(ctx, p, n)
		if err != nil {
			return nil, err
		}
		grew, err := e.historyGrowth(ctx, prev, cur)
		if err != nil {
			return nil, err
		}
		prev = cur
		if grew == 0 {
			break
		}
	}
	return prev, nil
}

// historyGrowth is how many events the workflows' histories gained from before to after,
// following continue-as-new from one run to the next.
func (e *env) historyGrowth(ctx context.Context, before, after map[string]histMark) (int64, error) {
	var total int64
	for id, a := range after {
		b, ok := before[id]
		if !ok {
			total += a.length
			continue
		}
		if a.run == b.run {
			total += a.length - b.length
			continue
		}
		run, offset := b.run, b.length
		for hops := 0; ; hops++ {
			d, err := e.st.Client.DescribeWorkflowExecution(ctx, id, run)
			if err != nil {
				return 0, fmt.Errorf("describe %s run %s: %w", id, run, err)
			}
			total += d.GetWorkflowExecutionInfo().GetHistoryLength() - offset
			if run == a.run || hops > 100 {
				break
			}
			it := e.st.Client.GetWorkflowHistory(ctx, id, run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
			if !it.HasNext() {
				break
			}
			ev, err := it.Next()
			if err != nil {
				return 0, fmt.Errorf("close event of %s run %s: %w", id, run, err)
			}
			next := ev.GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
			if next == "" {
				break
			}
			run, offset = next, 0
		}
	}
	return total, nil
}
