package bench

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// direction is one way a message travels.
type direction int

const (
	toAgent  direction = iota // a member's DM, relayed to the agent in Flex
	toMember                  // an agent's Flex message, relayed to the member's DM
)

func (d direction) String() string {
	if d == toAgent {
		return "member→agent"
	}
	return "agent→member"
}

// letter is the direction's letter in a message tag.
func (d direction) letter() string {
	if d == toAgent {
		return "m"
	}
	return "a"
}

// tagPrefix starts every benchmark message. The words of a tag are chosen so that no catalog
// language reads them as asking for a human (TestTagIsPlainText).
const tagPrefix = "bench p"

// tag is the text of message seq of conversation conv in phase id: "bench p3 m c12 s45".
func tag(id int, d direction, conv, seq int) string {
	return fmt.Sprintf("%s%d %s c%d s%d", tagPrefix, id, d.letter(), conv, seq)
}

// msgKey identifies one benchmark message.
type msgKey struct {
	phase int
	dir   direction
	conv  int
	seq   int
}

// parseTag finds a tag anywhere in s (a relayed DM carries the agent's name before it).
func parseTag(s string) (msgKey, bool) {
	i := strings.Index(s, tagPrefix)
	if i < 0 {
		return msgKey{}, false
	}
	f := strings.Fields(s[i+len(tagPrefix):])
	if len(f) < 4 || len(f[2]) < 2 || len(f[3]) < 2 || f[2][0] != 'c' || f[3][0] != 's' {
		return msgKey{}, false
	}
	var k msgKey
	var err1, err2, err3 error
	k.phase, err1 = strconv.Atoi(f[0])
	k.conv, err2 = strconv.Atoi(f[2][1:])
	k.seq, err3 = strconv.Atoi(f[3][1:])
	switch {
	case err1 != nil || err2 != nil || err3 != nil:
		return msgKey{}, false
	case f[1] == "m":
		k.dir = toAgent
	case f[1] == "a":
		k.dir = toMember
	default:
		return msgKey{}, false
	}
	return k, true
}

// sentMsg is one message sent in a phase and what the event streams saw of it.
type sentMsg struct {
	sent    time.Time
	sendErr bool
	// arrived is the first arrival the emulators' event streams reported (zero: none yet),
	// arrivals how many they reported.
	arrived  time.Time
	arrivals int
}

// stream is the messages of one conversation in one direction, by sequence number.
type stream struct {
	msgs   []sentMsg
	notify chan struct{} // a message of the stream arrived
}

// phaseLog records the messages of one phase of one path.
type phaseLog struct {
	id      int
	mu      sync.Mutex
	streams [2][]*stream // [direction][conversation]
	// lastArrival is the latest arrival seen, any direction.
	lastArrival time.Time
	arrivals    int
}

func newPhaseLog(id, convs int) *phaseLog {
	p := &phaseLog{id: id}
	for d := range p.streams {
		p.streams[d] = make([]*stream, convs)
		for c := range p.streams[d] {
			p.streams[d][c] = &stream{notify: make(chan struct{}, 1)}
		}
	}
	return p
}

// register records that message seq of (d, conv) is about to be sent now and returns its seq.
func (p *phaseLog) register(d direction, conv int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.streams[d][conv]
	s.msgs = append(s.msgs, sentMsg{sent: time.Now()})
	return len(s.msgs) - 1
}

// sendFailed marks a message whose send failed; it is not expected anywhere.
func (p *phaseLog) sendFailed(d direction, conv, seq int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.streams[d][conv].msgs[seq].sendErr = true
}

// arrive records an arrival reported by an event stream; it reports false for a message the
// phase never sent.
func (p *phaseLog) arrive(k msgKey, at time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if k.conv < 0 || k.conv >= len(p.streams[k.dir]) {
		return false
	}
	s := p.streams[k.dir][k.conv]
	if k.seq < 0 || k.seq >= len(s.msgs) {
		return false
	}
	m := &s.msgs[k.seq]
	if m.arrivals == 0 {
		m.arrived = at
		p.arrivals++
		if at.After(p.lastArrival) {
			p.lastArrival = at
		}
	}
	m.arrivals++
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return true
}

// hasArrived reports whether message seq of (d, conv) arrived.
func (p *phaseLog) hasArrived(d direction, conv, seq int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.streams[d][conv].msgs[seq].arrivals > 0
}

// progress returns how many messages were sent (without a send error), how many of them arrived
// (once or more), and when the last arrival was.
func (p *phaseLog) progress() (sent, arrived int, last time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for d := range p.streams {
		for _, s := range p.streams[d] {
			for _, m := range s.msgs {
				if !m.sendErr {
					sent++
				}
			}
		}
	}
	return sent, p.arrivals, p.lastArrival
}

// snapshot copies the messages of every stream.
func (p *phaseLog) snapshot() [2][][]sentMsg {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out [2][][]sentMsg
	for d := range p.streams {
		out[d] = make([][]sentMsg, len(p.streams[d]))
		for c, s := range p.streams[d] {
			out[d][c] = append([]sentMsg(nil), s.msgs...)
		}
	}
	return out
}

// tracker routes arrivals reported by the emulators' event streams to their phase.
type tracker struct {
	mu     sync.Mutex
	phases map[int]*phaseLog
	nextID int
	// strays counts tagged arrivals of no known phase or message; gaps counts events the
	// emulators dropped because a subscriber fell behind (gaps in their sequence numbers).
	strays atomic.Int64
	gaps   atomic.Int64
}

func newTracker() *tracker { return &tracker{phases: map[int]*phaseLog{}} }

// newPhase starts the log of a phase over convs conversations.
func (t *tracker) newPhase(convs int) *phaseLog {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.nextID++
	p := newPhaseLog(t.nextID, convs)
	t.phases[p.id] = p
	return p
}

// arrive records an arrival of the message tagged k.
func (t *tracker) arrive(k msgKey, at time.Time) {
	t.mu.Lock()
	p := t.phases[k.phase]
	t.mu.Unlock()
	if p == nil || !p.arrive(k, at) {
		t.strays.Add(1)
	}
}

// seqGap counts the events lost between two sequence numbers of one stream.
func (t *tracker) seqGap(prev, seq int64) {
	if prev != 0 && seq > prev+1 {
		t.gaps.Add(seq - prev - 1)
	}
}
