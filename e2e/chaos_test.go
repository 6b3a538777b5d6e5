package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flexcord/flexcord/internal/devstack"
	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/sandbox/twilioemu"
)

// TestChaos is the chaos run: many live conversations relay messages both ways while the worker
// is stopped and started, the Temporal server is restarted, the Discord gateway misses DMs (as
// while ingress is down) and reconnects, and Discord and Twilio answer with 5xx, 429, latency and
// lost answers. At the end it counts, per
// direction, what was sent, lost, duplicated and reordered, and prints one CHAOS line each.
//
//	make chaos                      (FLEXCORD_CHAOS=1 go test -run TestChaos ./e2e/ -v)
//	FLEXCORD_CHAOS_CONVERSATIONS=120 FLEXCORD_CHAOS_MESSAGES=15 make chaos
//	FLEXCORD_CHAOS_LOG=/tmp/chaos.log make chaos   (the stack's warnings and errors, to a file)
func TestChaos(t *testing.T) {
	if os.Getenv("FLEXCORD_CHAOS") == "" {
		t.Skip("set FLEXCORD_CHAOS=1 (make chaos) to run the chaos run")
	}
	convs := envInt("FLEXCORD_CHAOS_CONVERSATIONS", 40)
	perSide := envInt("FLEXCORD_CHAOS_MESSAGES", 10)
	opts := devstack.Options{DataDir: t.TempDir()} // on disk, so Temporal can be restarted
	if path := os.Getenv("FLEXCORD_CHAOS_LOG"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		opts.Log = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	st := startStack(t, opts)
	dc, tw := st.Discord, st.Twilio
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))

	// Every member asks for a human and an agent accepts.
	type chat struct {
		member discordemu.Member
		task   twilioemu.TaskView
	}
	chats := make([]chat, convs)
	for i := range chats {
		m := discordemu.Member{ID: strconv.Itoa(1300000000000000000 + i), Username: fmt.Sprintf("chaos%d", i), GlobalName: fmt.Sprintf("Chaos %d", i), Locale: "en-US"}
		dc.PutMember(m)
		chats[i].member = m
		if _, err := dc.SendDM(m.ID, "I want to talk to a human"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 3*time.Minute, "a waiting task per member", func() bool {
		return len(tw.Tasks(twilioemu.TaskWaiting)) >= convs
	})
	byUser := map[string]twilioemu.TaskView{}
	for _, task := range tw.Tasks(twilioemu.TaskWaiting) {
		if id, _ := task.Attributes["discord_user_id"].(string); id != "" {
			byUser[id] = task
		}
	}
	for i := range chats {
		task, ok := byUser[chats[i].member.ID]
		if !ok {
			t.Fatalf("no task for %s", chats[i].member.ID)
		}
		if _, err := tw.AcceptTask(task.SID, "Ana"); err != nil {
			t.Fatal(err)
		}
		chats[i].task = task
	}
	waitFor(t, 2*time.Minute, "every agent joined", func() bool {
		for _, c := range chats {
			if countBot(dc, c.member.ID, "Ana joined") == 0 {
				return false
			}
		}
		return true
	})

	// Chaos while both sides write.
	stop := make(chan struct{})
	var chaosLog []string
	var wg sync.WaitGroup
	wg.Go(func() {
		for round := 0; ; round++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(100+rng.IntN(400)) * time.Millisecond):
			}
			switch round % 6 {
			case 0:
				chaosLog = append(chaosLog, "worker stopped")
				st.StopWorker()
				time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond) // the outage
				if err := st.StartWorker(); err != nil {
					t.Errorf("restart worker: %v", err)
				}
			case 1:
				chaosLog = append(chaosLog, "gateway misses DMs, then reconnects")
				dc.MissDispatches("MESSAGE_CREATE")
				time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond) // the outage
				dc.StopMissingDispatches()
				dc.ReconnectGateway()
			case 2:
				chaosLog = append(chaosLog, "Twilio 503s and lost answers")
				_, _ = tw.InjectFault(twilioemu.Fault{Host: "conversations", Method: "POST", Path: "/v1/Conversations/*/Messages", Count: 5, Status: 503})
				_, _ = tw.InjectFault(twilioemu.Fault{Host: "conversations", Method: "POST", Path: "/v1/Conversations/*/Messages", Count: 3, Status: 500, After: true})
			case 3:
				chaosLog = append(chaosLog, "Discord 500s, 429s and latency")
				dc.InjectFault(discordemu.Fault{Route: discordemu.RouteCreateMessage, Count: 5, Status: 500})
				dc.InjectFault(discordemu.Fault{Route: discordemu.RouteCreateMessage, Count: 3, Status: 429, RetryAfter: 200 * time.Millisecond})
				dc.InjectFault(discordemu.Fault{Route: discordemu.RouteCreateMessage, Count: 5, Latency: 400 * time.Millisecond})
			case 5:
				chaosLog = append(chaosLog, "Temporal restarted")
				if err := st.RestartTemporal(context.Background()); err != nil {
					t.Errorf("restart Temporal: %v", err)
				}
			case 4:
				chaosLog = append(chaosLog, "Twilio 429s and latency")
				_, _ = tw.InjectFault(twilioemu.Fault{Host: "conversations", Count: 4, Status: 429})
				_, _ = tw.InjectFault(twilioemu.Fault{Host: "conversations", Count: 5, Latency: 300 * time.Millisecond})
			}
		}
	})
	var senders sync.WaitGroup
	for _, c := range chats {
		senders.Go(func() {
			for i := 1; i <= perSide; i++ {
				if _, err := dc.SendDM(c.member.ID, fmt.Sprintf("%s-m%03d", c.member.Username, i)); err != nil {
					t.Errorf("member DM: %v", err)
				}
				if _, err := tw.SendAgentMessage(c.task.SID, fmt.Sprintf("%s-a%03d", c.member.Username, i)); err != nil {
					t.Errorf("agent message: %v", err)
				}
				time.Sleep(time.Duration(100+rand.IntN(400)) * time.Millisecond) // typing pace
			}
		})
	}
	senders.Wait()
	close(stop)
	wg.Wait()
	dc.StopMissingDispatches()
	dc.ReconnectGateway() // a last resume: what the gateway missed is backfilled
	tw.ClearFaults()

	// Let everything settle, then count.
	memberRe, agentRe := regexp.MustCompile(`(chaos\d+)-m(\d{3})`), regexp.MustCompile(`(chaos\d+)-a(\d{3})`)
	count := func() (toFlex, toMember directionCount) {
		toFlex, toMember = newDirectionCount(), newDirectionCount()
		for _, c := range chats {
			msgs, _ := tw.ConversationMessages(c.task.ConversationSID)
			for _, m := range msgs {
				if g := memberRe.FindStringSubmatch(m.Body); g != nil {
					toFlex.see(g[1], g[2])
				}
			}
			for _, r := range botMessages(dc, c.member.ID) {
				for _, g := range agentRe.FindAllStringSubmatch(r.Message.Content, -1) {
					toMember.see(g[1], g[2])
				}
			}
		}
		return toFlex, toMember
	}
	sent := convs * perSide
	// Retries back off up to a minute; stop once nothing has moved for 90 s.
	deadline := time.Now().Add(10 * time.Minute)
	var toFlex, toMember directionCount
	progress, lastN := time.Now(), -1
	for {
		toFlex, toMember = count()
		if n := len(toFlex.seen) + len(toMember.seen); n != lastN {
			progress, lastN = time.Now(), n
		}
		if lastN == 2*sent || time.Now().After(deadline) || time.Since(progress) > 90*time.Second {
			break
		}
		time.Sleep(250 * time.Millisecond) // polling interval
	}
	t.Logf("chaos events: %d (%s)", len(chaosLog), strings.Join(uniq(chaosLog), "; "))
	for _, d := range []struct {
		name string
		c    directionCount
	}{{"member→flex", toFlex}, {"agent→member", toMember}} {
		lost, dup, reordered := d.c.report(sent)
		fmt.Printf("CHAOS %s conversations=%d sent=%d lost=%d duplicated=%d reordered=%d\n", d.name, convs, sent, lost, dup, reordered)
		if lost+dup+reordered > 0 {
			t.Errorf("%s: %d lost, %d duplicated, %d reordered of %d", d.name, lost, dup, reordered, sent)
		}
	}
	for conv, seqs := range toFlex.order {
		if !sort.StringsAreSorted(seqs) {
			t.Logf("%s: member messages reached Flex in the order %v", conv, seqs)
		}
	}
	// Where something went missing, what the conversation says about itself.
	for _, c := range chats {
		want := perSide
		if n := toFlex.arrived(c.member.Username); n == want && toMember.arrived(c.member.Username) == want {
			continue
		}
		s := conversationStatus(t, st, c.member.ID)
		var tail []string
		for _, l := range s.Transcript[max(0, len(s.Transcript)-6):] {
			tail = append(tail, l.From+": "+l.Text)
		}
		var inFlex []string
		msgs, _ := tw.ConversationMessages(c.task.ConversationSID)
		for _, m := range msgs {
			inFlex = append(inFlex, m.Body)
		}
		flexSID := ""
		if s.Flex != nil {
			flexSID = s.Flex.ConversationSID
		}
		t.Logf("%s: to Flex %d/%d, to member %d/%d; stage %s (%s), hand-overs %d, delivered %d, pending %d, failed %d; last: %q; Flex %s (task's %s) holds %q",
			c.member.Username, toFlex.arrived(c.member.Username), want, toMember.arrived(c.member.Username), want,
			s.Stage, s.ClosedReason, s.Handovers, s.Delivered, len(s.Pending), len(s.Failed), tail, flexSID, c.task.ConversationSID, inFlex)
	}
}

// arrived counts the distinct messages of one conversation that arrived.
func (d directionCount) arrived(conv string) int {
	n := 0
	for key := range d.seen {
		if strings.HasPrefix(key, conv+"/") {
			n++
		}
	}
	return n
}

// directionCount tallies what arrived of one direction, per conversation, in arrival order.
type directionCount struct {
	seen  map[string]int      // "conv/seq" → times seen
	order map[string][]string // conv → seqs in arrival order
}

func newDirectionCount() directionCount {
	return directionCount{seen: map[string]int{}, order: map[string][]string{}}
}

func (d directionCount) see(conv, seq string) {
	key := conv + "/" + seq
	d.seen[key]++
	d.order[conv] = append(d.order[conv], seq)
}

// report returns how many of sent never arrived, arrived more than once, and arrived before a
// message sent earlier in the same conversation.
func (d directionCount) report(sent int) (lost, dup, reordered int) {
	lost = sent - len(d.seen)
	for _, n := range d.seen {
		dup += n - 1
	}
	for _, seqs := range d.order {
		last := ""
		for _, s := range seqs {
			if s < last {
				reordered++
			}
			last = max(last, s)
		}
	}
	return lost, dup, reordered
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func uniq(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
