package bench

import (
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// report is the outcome of a run: every phase, in the order run.
type report struct {
	cfg    config
	phases []*phaseResult
	// setup says how the run was prepared (stack start, chats); notes what to know about it.
	setup, notes []string
}

// find returns the phase of path in mode over convs conversations, nil if none ran.
func (r *report) find(path string, m mode, convs int) *phaseResult {
	for _, p := range r.phases {
		if p.path == path && p.sc.mode == m && p.sc.convs == convs {
			return p
		}
	}
	return nil
}

// percentile is the nearest-rank q-quantile of sorted durations (0 when empty).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// cpuPerMsg is the phase's CPU time per message that arrived, in milliseconds.
func (p *phaseResult) cpuPerMsg() float64 {
	if p.msgs == 0 {
		return 0
	}
	return ms(p.cpu) / float64(p.msgs)
}

// cpuAboveIdle is cpuPerMsg without the CPU the process burns with no traffic (the embedded
// server's own loops), in milliseconds.
func (p *phaseResult) cpuAboveIdle() float64 {
	if p.msgs == 0 {
		return 0
	}
	net := float64(p.cpu) - p.idle*float64(p.cpuWall)
	return max(net, 0) / float64(time.Millisecond) / float64(p.msgs)
}

// eventsPerMsg is the history events per message that arrived (-1 when not counted).
func (p *phaseResult) eventsPerMsg() float64 {
	if p.events < 0 || p.msgs == 0 {
		return -1
	}
	return float64(p.events) / float64(p.msgs)
}

// rate is the messages per second both ways during the sending window.
func (p *phaseResult) rate() float64 { return p.dirs[toAgent].rate + p.dirs[toMember].rate }

// worstStall is the longest stall of any conversation, either way.
func (p *phaseResult) worstStall() time.Duration {
	return max(p.dirs[toAgent].stall, p.dirs[toMember].stall)
}

// worst returns the larger of a latency percentile over the two directions.
func (p *phaseResult) worst(q float64) time.Duration {
	return max(percentile(p.dirs[toAgent].lat, q), percentile(p.dirs[toMember].lat, q))
}

func (s scenario) describe() string {
	switch s.mode {
	case paced:
		return fmt.Sprintf("conv=%d paced: each conversation sends one message each way every %v ± %v, for %v",
			s.convs, thinkTime, thinkJitter, s.dur)
	case saturated:
		return fmt.Sprintf("conv=%d saturated: each conversation sends its next message each way as soon as the previous arrived, for %v",
			s.convs, s.dur)
	default:
		return fmt.Sprintf("conv=%d overload: twice the saturated rate (%s member→agent, %s agent→member msg/s offered) for %v",
			s.convs, num(s.rate[toAgent]), num(s.rate[toMember]), s.dur)
	}
}

// num formats a rate or a count: no decimals from 100 up.
func num(v float64) string {
	if v >= 100 || v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func pct(part, whole int) string {
	if whole == 0 {
		return "0 %"
	}
	return strconv.FormatFloat(100*float64(part)/float64(whole), 'f', 1, 64) + " %"
}

// write prints the report: the set-up, one table per scenario, the notes and, last, the BENCH
// line.
func (r *report) write(w io.Writer) {
	fmt.Fprintln(w, "flexcord relay benchmark: full path (gateway → ingress → Temporal → delivery → Flex, and signed webhook → ingress → Temporal → delivery → DM) vs the direct relay")
	for _, s := range r.setup {
		fmt.Fprintln(w, "  "+s)
	}
	var last scenario
	for i, p := range r.phases {
		if i == 0 || p.sc.mode != last.mode || p.sc.convs != last.convs {
			last = p.sc
			fmt.Fprintf(w, "\n== %s\n", p.sc.describe())
			group := []*phaseResult{}
			for _, q := range r.phases[i:] {
				if q.sc.mode == p.sc.mode && q.sc.convs == p.sc.convs {
					group = append(group, q)
				}
			}
			writeGroup(w, group)
		}
	}
	if len(r.notes) > 0 {
		fmt.Fprintln(w, "\nNotes:")
		for _, n := range r.notes {
			fmt.Fprintln(w, "  - "+n)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, r.benchLine())
}

func writeGroup(w io.Writer, group []*phaseResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\tdirection\tsent\toffered/s\tmsg/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\tlost\tdup\treord\trefused\tstall s\t")
	for _, p := range group {
		for d := range p.dirs {
			r := p.dirs[d]
			refused := "-" // a gateway DM cannot be refused
			if direction(d) == toMember {
				refused = pct(r.refusedAttempts, r.attempts)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%d\t%d\t%s\t%.2f\t\n",
				p.path, direction(d), r.sent, num(p.offered[d]), num(r.rate),
				ms(percentile(r.lat, .50)), ms(percentile(r.lat, .90)), ms(percentile(r.lat, .99)), ms(percentile(r.lat, 1)),
				r.lost, r.dup, r.reordered, refused, r.stall.Seconds())
		}
	}
	_ = tw.Flush()
	for _, p := range group {
		line := fmt.Sprintf("  %-9s CPU %.3f ms/msg (%.3f above idle)", p.path+":", p.cpuPerMsg(), p.cpuAboveIdle())
		if ev := p.eventsPerMsg(); ev >= 0 {
			line += fmt.Sprintf(", %.2f history events/msg", ev)
		}
		line += fmt.Sprintf(", %s msg/s both ways, last arrival %.2f s after sending stopped", num(p.rate()), p.drain.Seconds())
		if p.stoppedEarly != "" {
			line += "; " + p.stoppedEarly
		}
		if p.sendErrs > 0 {
			line += fmt.Sprintf(", %d sends failed", p.sendErrs)
		}
		fmt.Fprintln(w, line)
		for d := range p.dirs {
			r := p.dirs[d]
			var extra []string
			if r.misrouted > 0 {
				extra = append(extra, fmt.Sprintf("%d misrouted", r.misrouted))
			}
			if r.noSample > 0 {
				extra = append(extra, fmt.Sprintf("%d arrivals without a latency sample", r.noSample))
			}
			if r.streamOnly > 0 {
				extra = append(extra, fmt.Sprintf("%d arrivals seen only on the event stream", r.streamOnly))
			}
			if direction(d) == toMember && (r.refusedAttempts > 0 || r.otherFailures > 0 || r.refusedMsgs > 0 || r.pending > 0 || p.sc.mode == overload) {
				extra = append(extra, fmt.Sprintf("webhook attempts %d, refused %d (%d without Retry-After), other failures %d; agent messages Twilio gave up on %d (%d arrived all the same), still retried %d",
					r.attempts, r.refusedAttempts, r.noRetryAfter, r.otherFailures, r.refusedMsgs, r.arrivedAnyway, r.pending))
			}
			if len(extra) > 0 {
				fmt.Fprintf(w, "           %s: %s\n", direction(d), strings.Join(extra, "; "))
			}
		}
		if p.sc.mode == overload {
			accepted := 0
			lost, dup, reord := 0, 0, 0
			for d := range p.dirs {
				accepted += p.dirs[d].sent - p.dirs[d].refusedMsgs - p.dirs[d].pending
				lost += p.dirs[d].lost
				dup += p.dirs[d].dup
				reord += p.dirs[d].reordered
			}
			fmt.Fprintf(w, "           offered %s + %s msg/s; backlog cleared %.1f s after the overload ended; worst stall %.1f s; of %d accepted messages %d lost, %d duplicated, %d reordered\n",
				num(p.offered[toAgent]), num(p.offered[toMember]), p.drain.Seconds(), p.worstStall().Seconds(), accepted, lost, dup, reord)
		}
	}
}

// benchLine is the one-line summary: the largest saturated run of flexcord (its throughput both
// ways, the worse direction's p50 and p99, history events and CPU per message), the direct
// relay's throughput in the same scenario, and the worst stall of the overload run.
func (r *report) benchLine() string {
	n := r.cfg.convs[len(r.cfg.convs)-1]
	f, d, o := r.find("flexcord", saturated, n), r.find("direct", saturated, n), r.find("flexcord", overload, n)
	nan := math.NaN()
	vals := []float64{nan, nan, nan, nan, nan, nan, nan}
	if f != nil {
		vals[0], vals[1], vals[2], vals[3], vals[4] = f.rate(), ms(f.worst(.50)), ms(f.worst(.99)), f.eventsPerMsg(), f.cpuPerMsg()
	}
	if d != nil {
		vals[5] = d.rate()
	}
	if o != nil {
		vals[6] = o.worstStall().Seconds()
	}
	return fmt.Sprintf("BENCH relay conv=%d msgs_per_s=%.0f p50_ms=%.1f p99_ms=%.1f events_per_msg=%.2f cpu_ms_per_msg=%.3f direct_msgs_per_s=%.0f overload_worst_stall_s=%.1f",
		n, vals[0], vals[1], vals[2], vals[3], vals[4], vals[5], vals[6])
}

// benchLineRE matches a BENCH line; every value is a plain non-negative number.
var benchLineRE = regexp.MustCompile(`^BENCH relay conv=(\d+) msgs_per_s=(\d+) p50_ms=(\d+\.\d) p99_ms=(\d+\.\d) events_per_msg=(\d+\.\d\d) cpu_ms_per_msg=(\d+\.\d+) direct_msgs_per_s=(\d+) overload_worst_stall_s=(\d+\.\d)$`)

// parseBenchLine returns the values of a BENCH line by name.
func parseBenchLine(line string) (map[string]float64, error) {
	m := benchLineRE.FindStringSubmatch(line)
	if m == nil {
		return nil, fmt.Errorf("not a BENCH line: %q", line)
	}
	names := []string{"conv", "msgs_per_s", "p50_ms", "p99_ms", "events_per_msg", "cpu_ms_per_msg", "direct_msgs_per_s", "overload_worst_stall_s"}
	out := map[string]float64{}
	for i, name := range names {
		v, err := strconv.ParseFloat(m[i+1], 64)
		if err != nil {
			return nil, fmt.Errorf("%s in %q: %w", name, line, err)
		}
		out[name] = v
	}
	return out, nil
}
