package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flexcord/flexcord/internal/i18n"
)

// config is what a run does.
type config struct {
	// convs are the conversation counts, ascending; every one runs paced and saturated, the
	// largest also under overload.
	convs []int
	// pacedDur and saturatedDur say how long a phase over n conversations sends.
	pacedDur, saturatedDur func(n int) time.Duration
	overloadDur            time.Duration
	// admission sizes ingress's signal rate for the overload phase, as a share of the
	// saturated phase's msg/s (0: no rate bound).
	admission float64
	// cpuProfile, when set, receives a CPU profile of flexcord's largest saturated phase, and
	// cpuProfile + ".direct" one of the direct relay's.
	cpuProfile string
}

// configFromEnv reads the run's settings:
//
//	FLEXCORD_BENCH_QUICK=1             1 and 50 conversations, 4 s phases, 5 s of overload
//	FLEXCORD_BENCH_CONVERSATIONS=1,100,500
//	FLEXCORD_BENCH_SECONDS=N           every paced and saturated phase sends for N s
//	FLEXCORD_BENCH_OVERLOAD_SECONDS=N  the overload phase offers for N s (default 15)
//	FLEXCORD_BENCH_ADMISSION=S         ingress's signal rate in the overload phase, as a share of
//	                                   the saturated msg/s (default 0.9; 0: no rate bound)
//	FLEXCORD_BENCH_CPUPROFILE=file     CPU profiles of the largest saturated phase: file (flexcord), file.direct
//	FLEXCORD_BENCH_REPORT=file         write the report there instead of to standard output
//	FLEXCORD_BENCH_LABEL=text          what was measured (make bench passes git describe)
func configFromEnv() (config, error) {
	cfg := config{
		convs: []int{1, 100, 500},
		pacedDur: func(n int) time.Duration {
			if n == 1 {
				return 15 * time.Second
			}
			return 20 * time.Second
		},
		saturatedDur: func(n int) time.Duration {
			if n == 1 {
				return 10 * time.Second
			}
			return 15 * time.Second
		},
		overloadDur: 15 * time.Second,
		admission:   0.9,
		cpuProfile:  os.Getenv("FLEXCORD_BENCH_CPUPROFILE"),
	}
	if os.Getenv("FLEXCORD_BENCH_QUICK") != "" {
		cfg.convs = []int{1, 50}
		cfg.pacedDur = func(int) time.Duration { return 4 * time.Second }
		cfg.saturatedDur = cfg.pacedDur
		cfg.overloadDur = 5 * time.Second
	}
	if v := os.Getenv("FLEXCORD_BENCH_CONVERSATIONS"); v != "" {
		cfg.convs = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				return cfg, fmt.Errorf("FLEXCORD_BENCH_CONVERSATIONS=%q: want conversation counts such as 1,100,500", v)
			}
			cfg.convs = append(cfg.convs, n)
		}
		slices.Sort(cfg.convs)
		cfg.convs = slices.Compact(cfg.convs)
	}
	if v := os.Getenv("FLEXCORD_BENCH_ADMISSION"); v != "" {
		a, err := strconv.ParseFloat(v, 64)
		if err != nil || a < 0 {
			return cfg, fmt.Errorf("FLEXCORD_BENCH_ADMISSION=%q: want a share such as 0.9, or 0", v)
		}
		cfg.admission = a
	}
	if v := os.Getenv("FLEXCORD_BENCH_SECONDS"); v != "" {
		s, err := strconv.ParseFloat(v, 64)
		if err != nil || s <= 0 {
			return cfg, fmt.Errorf("FLEXCORD_BENCH_SECONDS=%q: want a number of seconds", v)
		}
		d := time.Duration(s * float64(time.Second))
		cfg.pacedDur = func(int) time.Duration { return d }
		cfg.saturatedDur = cfg.pacedDur
	}
	if v := os.Getenv("FLEXCORD_BENCH_OVERLOAD_SECONDS"); v != "" {
		s, err := strconv.ParseFloat(v, 64)
		if err != nil || s <= 0 {
			return cfg, fmt.Errorf("FLEXCORD_BENCH_OVERLOAD_SECONDS=%q: want a number of seconds", v)
		}
		cfg.overloadDur = time.Duration(s * float64(time.Second))
	}
	return cfg, nil
}

// runBench starts the stack and the direct relay and runs every phase of cfg: per conversation
// count, paced then saturated, flexcord then the direct relay; then flexcord under twice its
// largest saturated rate.
func runBench(ctx context.Context, cfg config, logf func(string, ...any)) (*report, error) {
	rep := &report{cfg: cfg}
	start := time.Now()
	e, err := startEnv(ctx, logf)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	if label := os.Getenv("FLEXCORD_BENCH_LABEL"); label != "" {
		rep.setup = append(rep.setup, "measured: "+label)
	}
	rep.setup = append(rep.setup, fmt.Sprintf("%s, %d CPUs, GOMAXPROCS %d; one process: embedded Temporal server, worker, ingress, four emulators, the direct relay and the load; flexcord's provider queue rates lifted (the emulators have no bot-wide limit)", runtime.Version(), runtime.NumCPU(), runtime.GOMAXPROCS(0)))
	for _, n := range cfg.convs {
		setup := time.Now()
		if err := e.growFlexcord(ctx, n); err != nil {
			return nil, err
		}
		flexSetup := time.Since(setup)
		if err := e.growDirect(ctx, n); err != nil {
			return nil, err
		}
		directSetup := time.Since(setup) - flexSetup
		// Idle: once the new conversations are done with their set-up.
		if _, err := e.settledHistories(ctx, e.flex, n); err != nil {
			return nil, err
		}
		idle := idleCPU(ctx, 2*time.Second)
		rep.setup = append(rep.setup, fmt.Sprintf("live chats per path: %d (each member asked for a human, an agent accepted): flexcord ready in %.1f s, direct in %.1f s; idle, the process then used %.0f %% of a core",
			n, flexSetup.Seconds(), directSetup.Seconds(), 100*idle))
		for _, m := range []mode{paced, saturated} {
			dur := cfg.pacedDur(n)
			if m == saturated {
				dur = cfg.saturatedDur(n)
			}
			for _, p := range []*path{e.flex, e.dir} {
				profile := ""
				if m == saturated && n == cfg.convs[len(cfg.convs)-1] && cfg.cpuProfile != "" {
					profile = cfg.cpuProfile
					if p == e.dir {
						profile += ".direct"
					}
				}
				sc := scenario{mode: m, convs: n, dur: dur}
				res, err := e.runPhase(ctx, p, sc, profile)
				if err != nil {
					return nil, fmt.Errorf("%s %s conv=%d: %w", p.name, m, n, err)
				}
				res.idle = idle
				logf("%-8s %-9s conv=%-3d %6s msg/s  p50 %5.1f ms  p99 %6.1f ms  CPU %.3f ms/msg  events/msg %.2f  lost %d",
					p.name, m, n, num(res.rate()), ms(res.worst(.5)), ms(res.worst(.99)), res.cpuPerMsg(), res.eventsPerMsg(),
					res.dirs[0].lost+res.dirs[1].lost)
				rep.phases = append(rep.phases, res)
			}
		}
	}
	n := cfg.convs[len(cfg.convs)-1]
	if sat := rep.find("flexcord", saturated, n); sat != nil {
		sc := scenario{mode: overload, convs: n, dur: cfg.overloadDur,
			rate: [2]float64{2 * sat.dirs[toAgent].rate, 2 * sat.dirs[toMember].rate}}
		// Ingress's signal rate is sized from the capacity just measured, as an operator sizes
		// FLEXCORD_MAX_SIGNAL_RATE from make bench (README).
		limit := cfg.admission * sat.rate()
		if limit > 0 {
			e.st.Ingress.SetMaxSignalRate(limit)
			rep.setup = append(rep.setup, fmt.Sprintf("overload: ingress takes %s relayed messages/s (%.0f %% of the saturated msg/s; FLEXCORD_MAX_SIGNAL_RATE): beyond it agents' webhooks get 503 with Retry-After, members' DMs are always taken; in every phase agents' webhooks are refused while the workflow task backlog is older than 30 s (FLEXCORD_MAX_BACKLOG_AGE)",
				num(limit), 100*cfg.admission))
		}
		res, err := e.runPhase(ctx, e.flex, sc, "")
		e.st.Ingress.SetMaxSignalRate(0)
		if err != nil {
			return nil, fmt.Errorf("flexcord overload conv=%d: %w", n, err)
		}
		res.idle = sat.idle
		logf("flexcord overload  conv=%-3d offered %s+%s msg/s  worst stall %.1f s  backlog cleared in %.1f s",
			n, num(res.offered[0]), num(res.offered[1]), res.worstStall().Seconds(), res.drain.Seconds())
		rep.phases = append(rep.phases, res)
	}

	// What to know when reading the numbers.
	rep.notes = append(rep.notes,
		"latency: from just before the emulator is told to send (member DM / agent message) to the emulator storing the relayed message (its event's time)",
		"offered/s: messages sent per second of sending; msg/s: messages that arrived per second, from the start of the phase to its last arrival; the BENCH line's msgs_per_s is both directions together, its p50/p99 the worse direction",
		"CPU: the whole process (server, worker, ingress, emulators, load) from the start of the phase to its last arrival, per message that arrived either way; each path's phases run alone; \"above idle\" takes off what the process burns with no traffic (mostly the embedded server's own loops)",
		"history events: growth of the Conversation and Case workflow histories over the phase (following continue-as-new), per message that arrived either way",
		"refused: share of agent-message webhook attempts ingress answered 429/503 (Twilio re-sends them); a gateway DM cannot be refused",
		"stall: the longest time one conversation had messages outstanding in one direction and nothing arrived",
		"the Discord emulator allows 50 messages per second per channel (429 beyond), which bounds one conversation's agent→member rate on both paths")
	if g := e.tr.gaps.Load(); g > 0 {
		rep.notes = append(rep.notes, fmt.Sprintf("the event streams dropped %d events (slow subscriber): those arrivals are counted but have no latency sample", g))
	}
	if s := e.tr.strays.Load(); s > 0 {
		rep.notes = append(rep.notes, fmt.Sprintf("%d tagged arrivals matched no message sent", s))
	}
	for _, p := range []*path{e.flex, e.dir} {
		if v := append(p.dc.Violations(), p.tw.Violations()...); len(v) > 0 {
			rep.notes = append(rep.notes, fmt.Sprintf("%s: %d emulator contract violations, first: %s", p.name, len(v), v[0]))
		}
	}
	if n := e.direct.postErrors.Load() + e.direct.dmErrors.Load() + e.direct.badSignatures.Load(); n > 0 {
		rep.notes = append(rep.notes, fmt.Sprintf("direct relay: %d failed Flex posts, %d failed DMs, %d bad signatures (each retried)",
			e.direct.postErrors.Load(), e.direct.dmErrors.Load(), e.direct.badSignatures.Load()))
	}
	rep.notes = append(rep.notes, fmt.Sprintf("the run took %v", time.Since(start).Round(time.Second)))
	return rep, nil
}

// TestRelayBench is `make bench`: the full relay path side by side with the direct relay, at
// every conversation count paced and saturated, then under overload. The report ends with the
// BENCH line.
func TestRelayBench(t *testing.T) {
	if os.Getenv("FLEXCORD_BENCH") == "" {
		t.Skip("set FLEXCORD_BENCH=1 (make bench) to run the relay benchmark")
	}
	cfg, err := configFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := runBench(context.Background(), cfg, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	rep.write(&b)
	if path := os.Getenv("FLEXCORD_BENCH_REPORT"); path != "" {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	fmt.Print(b.String())
}

// TestHarness runs the benchmark's quick path over a few conversations and checks the
// harness's own accounting: every message sent is counted once, latencies are not negative,
// the event streams agree with the emulators' stores, and the BENCH line parses.
func TestHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole stack")
	}
	cfg := config{
		convs:        []int{3},
		pacedDur:     func(int) time.Duration { return 1500 * time.Millisecond },
		saturatedDur: func(int) time.Duration { return 1500 * time.Millisecond },
		overloadDur:  1500 * time.Millisecond,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := runBench(ctx, cfg, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	rep.write(&b)
	t.Log("\n" + b.String())

	if len(rep.phases) != 5 {
		t.Fatalf("%d phases, want 5 (paced and saturated for both paths, overload)", len(rep.phases))
	}
	for _, p := range rep.phases {
		name := fmt.Sprintf("%s %s", p.path, p.sc.mode)
		total := 0
		for d, r := range p.dirs {
			if r.sent == 0 {
				t.Errorf("%s %s: nothing sent", name, direction(d))
			}
			// Every message sent is exactly one of: arrived, lost, refused, still pending.
			notArrived := r.lost + (r.refusedMsgs - r.arrivedAnyway) + r.pending
			if r.arrived+notArrived != r.sent {
				t.Errorf("%s %s: %d arrived + %d not = %d, want the %d sent", name, direction(d), r.arrived, notArrived, r.arrived+notArrived, r.sent)
			}
			if r.streamOnly != 0 || r.misrouted != 0 {
				t.Errorf("%s %s: %d arrivals only on the event stream, %d misrouted", name, direction(d), r.streamOnly, r.misrouted)
			}
			if len(r.lat)+r.noSample != r.arrived {
				t.Errorf("%s %s: %d latency samples + %d without, want one per arrival (%d)", name, direction(d), len(r.lat), r.noSample, r.arrived)
			}
			if len(r.lat) > 0 && r.lat[0] < 0 {
				t.Errorf("%s %s: negative latency %v", name, direction(d), r.lat[0])
			}
			if r.stall < 0 {
				t.Errorf("%s %s: negative stall %v", name, direction(d), r.stall)
			}
			total += r.arrived
		}
		if p.msgs != total {
			t.Errorf("%s: %d messages counted for CPU, want %d", name, p.msgs, total)
		}
		if p.path == "flexcord" && p.events <= 0 {
			t.Errorf("%s: history grew by %d events", name, p.events)
		}
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	vals, err := parseBenchLine(lines[len(lines)-1])
	if err != nil {
		t.Fatalf("the report's last line: %v", err)
	}
	if vals["conv"] != 3 || vals["msgs_per_s"] <= 0 || vals["direct_msgs_per_s"] <= 0 {
		t.Errorf("BENCH values %v", vals)
	}
}

// TestTagIsPlainText checks that a benchmark message survives the round trip through its tag and
// is not read as a member asking for a human.
func TestTagIsPlainText(t *testing.T) {
	for _, k := range []msgKey{{1, toAgent, 0, 0}, {12, toMember, 499, 12345}} {
		s := tag(k.phase, k.dir, k.conv, k.seq)
		if got, ok := parseTag("**Ana:** " + s); !ok || got != k {
			t.Errorf("parseTag(%q) = %v, %v; want %v", s, got, ok, k)
		}
		if i18n.WantsHuman(s) {
			t.Errorf("%q reads as asking for a human", s)
		}
	}
	for _, s := range []string{"", "bench", "bench p1 x c1 s1", "bench p1 m 1 s1", "bench px m c1 s1"} {
		if _, ok := parseTag(s); ok {
			t.Errorf("parseTag(%q) accepted it", s)
		}
	}
	if _, err := parseBenchLine("BENCH relay conv=500 msgs_per_s=612 p50_ms=4.1 p99_ms=22.0 events_per_msg=2.95 cpu_ms_per_msg=2.874 direct_msgs_per_s=20512 overload_worst_stall_s=3.2"); err != nil {
		t.Error(err)
	}
}
