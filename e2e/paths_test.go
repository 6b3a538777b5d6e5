package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	taskrouter "github.com/twilio/twilio-go/rest/taskrouter/v1"
	"go.temporal.io/sdk/client"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/internal/devstack"
	"github.com/flexcord/flexcord/internal/twilioclient"
	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/sandbox/twilioemu"
	"github.com/flexcord/flexcord/workflows"
)

// The tests in this file walk the ways out of every stage of a conversation ("Every path ends"
// in the README) through the whole stack: what the member reads on Discord, what Flex holds, and
// where useful what the workflows report.

// TestPathFlexLostMidChat: Flex restarts and forgets a live chat without telling anyone. The
// member's next message finds the conversation gone (20404): they are handed to a new interaction
// of the same case with that message and the transcript, and told so.
func TestPathFlexLostMidChat(t *testing.T) {
	st := startStack(t, devstack.Options{})
	dc, tw := st.Discord, st.Twilio
	member := devstack.SandboxMembers[0]

	caseID, first := handToAgent(t, st, member.ID, "Ana")
	say(t, dc, member.ID, "my order 1234 never arrived")
	waitFor(t, 20*time.Second, "the first line in Flex", func() bool {
		return slices.Contains(customerLines(tw, first.ConversationSID), "my order 1234 never arrived")
	})

	lost, err := tw.LoseConversation(first.ConversationSID)
	if err != nil || len(lost) != 1 || lost[0] != first.SID {
		t.Fatalf("lose the conversation: tasks %q, %v", lost, err)
	}
	say(t, dc, member.ID, "hello? are you still there")

	var second twilioemu.TaskView
	waitFor(t, 30*time.Second, "a new Flex task for the same case", func() bool {
		for _, tk := range tw.Tasks(twilioemu.TaskWaiting) {
			if tk.Attributes["case_id"] == caseID && tk.SID != first.SID {
				second = tk
				return true
			}
		}
		return false
	})
	if second.ConversationSID == first.ConversationSID {
		t.Fatalf("the new task uses the lost conversation %s", first.ConversationSID)
	}
	if tr := fmt.Sprint(second.Attributes["transcript"]); !strings.Contains(tr, "my order 1234 never arrived") {
		t.Errorf("the new task's transcript lacks the chat so far: %q", tr)
	}
	waitFor(t, 20*time.Second, "the member told they were reconnected", func() bool {
		r, ok := findBot(dc, member.ID, "reconnected you")
		return ok && strings.Contains(r.Message.Content, caseID)
	})
	waitFor(t, 20*time.Second, "the message in the new Flex conversation", func() bool {
		return slices.Contains(customerLines(tw, second.ConversationSID), "hello? are you still there")
	})
	if _, ok := findBot(dc, member.ID, "could not be passed on"); ok {
		t.Errorf("the member was told their message could not be passed on")
	}
	if s := conversationStatus(t, st, member.ID); s.Stage != workflows.StageQueued || s.CaseID != caseID || s.Handovers != 2 {
		t.Errorf("status = stage %s case %s hand-overs %d, want queued, %s, 2", s.Stage, s.CaseID, s.Handovers, caseID)
	}

	// /helpme now gets an answer, in the DMs and in the channel.
	info := helpMe(t, dc, member.ID)
	waitFor(t, 20*time.Second, "the /helpme reminder", func() bool {
		r, ok := findBot(dc, member.ID, "already connected with our support team")
		return ok && strings.Contains(r.Message.Content, caseID)
	})
	waitAnswer(t, dc, member.ID, info.ID, "sent you a direct message")

	// The next agent takes the chat over, and it goes on.
	if _, err := tw.AcceptTask(second.SID, "Bo"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "Bo joined", func() bool { return countBot(dc, member.ID, "Bo joined") == 1 })
	if _, err := tw.SendAgentMessage(second.SID, "welcome back, I can see your order"); err != nil {
		t.Fatal(err)
	}
	say(t, dc, member.ID, "great, thanks Bo")
	waitFor(t, 20*time.Second, "the chat going on", func() bool {
		return countBot(dc, member.ID, "welcome back, I can see your order") == 1 &&
			slices.Contains(customerLines(tw, second.ConversationSID), "great, thanks Bo")
	})
	if got := customerLines(tw, second.ConversationSID); strings.Join(got, "|") != "hello? are you still there|great, thanks Bo" {
		t.Errorf("the new Flex conversation holds %q", got)
	}
}

// TestPathDMsClosedThenHelpMeAgain: the greeting cannot be delivered because the member does not
// accept DMs; /helpme tells them so. Once they allow DMs, /helpme again greets them, with no
// operator involved, and neither /helpme is left "thinking…".
func TestPathDMsClosedThenHelpMeAgain(t *testing.T) {
	st := startStack(t, devstack.Options{})
	dc := st.Discord
	member := devstack.SandboxMembers[0]

	if err := dc.SetDMsClosed(member.ID, true); err != nil {
		t.Fatal(err)
	}
	first := helpMe(t, dc, member.ID)
	waitAnswer(t, dc, member.ID, first.ID, "couldn't send you a direct message")
	if n := countBot(dc, member.ID, "Hi Mika"); n != 0 {
		t.Fatalf("greeted %d times with DMs closed", n)
	}

	if err := dc.SetDMsClosed(member.ID, false); err != nil {
		t.Fatal(err)
	}
	second := helpMe(t, dc, member.ID)
	var greeting discordemu.Record
	waitFor(t, 20*time.Second, "the greeting", func() bool {
		var ok bool
		greeting, ok = findBot(dc, member.ID, "Hi Mika")
		return ok
	})
	waitAnswer(t, dc, member.ID, second.ID, "sent you a direct message")
	if n := countBot(dc, member.ID, "Hi Mika"); n != 1 {
		t.Errorf("greeted %d times, want once", n)
	}
	s := conversationStatus(t, st, member.ID)
	if len(s.Failed) != 0 || len(s.Pending) != 0 {
		t.Errorf("deliveries left behind: failed %+v, pending %+v", s.Failed, s.Pending)
	}

	// The greeting works: its button hands the member to an agent.
	click(t, dc, member.ID, greeting, workflows.ButtonCustomID(workflows.ActionTalkToHuman, 0))
	waitFor(t, 20*time.Second, "the case announcement", func() bool { _, ok := findBot(dc, member.ID, "created. Transferring you"); return ok })
	waitTask(t, st.Twilio, conversationStatus(t, st, member.ID).CaseID)
}

// TestPathNoAgent: a task that ends without an agent (canceled, or timed out of its workflow) is
// not a wrap-up. The member hears that no agent is free and chooses: keep waiting (the same case
// is queued again) or leave a message (the case stays open for a follow-up).
func TestPathNoAgent(t *testing.T) {
	st := startStack(t, devstack.Options{})
	dc, tw := st.Discord, st.Twilio

	t.Run("canceled then keep waiting", func(t *testing.T) {
		member := devstack.SandboxMembers[0]
		caseID, task := handToAgent(t, st, member.ID, "")
		if _, err := tw.CancelTask(task.SID, "No agents available"); err != nil {
			t.Fatal(err)
		}
		offer := waitNoAgentOffer(t, dc, member.ID, caseID)
		if s := conversationStatus(t, st, member.ID); s.Stage != workflows.StageNoAgent {
			t.Errorf("stage = %s, want no_agent", s.Stage)
		}

		click(t, dc, member.ID, offer, "flexcord:wait:"+caseID)
		waitFor(t, 20*time.Second, "back in the queue", func() bool {
			r, ok := findBot(dc, member.ID, "back in the queue")
			return ok && strings.Contains(r.Message.Content, caseID)
		})
		var next twilioemu.TaskView
		waitFor(t, 20*time.Second, "a new task for the same case", func() bool {
			for _, tk := range tw.Tasks(twilioemu.TaskWaiting) {
				if tk.Attributes["case_id"] == caseID && tk.SID != task.SID {
					next = tk
					return true
				}
			}
			return false
		})
		if next.ConversationSID == task.ConversationSID {
			t.Errorf("the new task reuses the first hand-over's conversation")
		}
		waitFor(t, 20*time.Second, "the offer's buttons disabled", func() bool {
			r, ok := findBot(dc, member.ID, "No agent is free")
			return ok && allDisabled(r)
		})
		if s := conversationStatus(t, st, member.ID); s.Stage != workflows.StageQueued || s.CaseID != caseID {
			t.Errorf("status = stage %s case %s, want queued, %s", s.Stage, s.CaseID, caseID)
		}
		// This time an agent is free.
		if _, err := tw.AcceptTask(next.SID, "Ana"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "Ana joined", func() bool { return countBot(dc, member.ID, "Ana joined") == 1 })
		noResolution(t, dc, member.ID)
	})

	t.Run("timed out then leave a message", func(t *testing.T) {
		member := devstack.SandboxMembers[2]
		caseID, task := handToAgent(t, st, member.ID, "")
		if _, err := tw.TimeoutTask(task.SID); err != nil {
			t.Fatal(err)
		}
		offer := waitNoAgentOffer(t, dc, member.ID, caseID)
		// workflow.timeout and task.canceled both came: one offer.
		waitDeliveries(t, tw, func(d twilioemu.Delivery) bool { return d.TaskSID == task.SID })

		click(t, dc, member.ID, offer, "flexcord:leave:"+caseID)
		waitFor(t, 20*time.Second, "the case left open", func() bool {
			r, ok := findBot(dc, member.ID, "stays open")
			return ok && strings.Contains(r.Message.Content, caseID)
		})
		view := waitCase(t, st, caseID, "the outcome awaiting_follow_up", func(v workflows.CaseView) bool {
			return v.Outcome == workflows.OutcomeAwaitingFollowUp && v.ConversationEnded
		})
		if view.Status != workflows.CaseOpen {
			t.Errorf("case status %s, want open", view.Status)
		}
		waitFor(t, 20*time.Second, "the conversation closed", func() bool {
			s := conversationStatus(t, st, member.ID)
			return s.Stage == workflows.StageClosed && s.ClosedReason == workflows.ReasonLeftMessage
		})
		if n := countBot(dc, member.ID, "No agent is free"); n != 1 {
			t.Errorf("told %d times that no agent is free", n)
		}
		if tk, err := tw.Task(task.SID); err != nil || tk.Status != twilioemu.TaskCanceled {
			t.Errorf("task %s: %s, %v; want canceled", task.SID, tk.Status, err)
		}
		noResolution(t, dc, member.ID)
	})
}

// TestPathOperatorCloseWhileQueued: an operator's close is final. Whatever is under way when it
// lands (a task waiting for an agent, a hand-over to Flex) is withdrawn, the member hears nothing
// more about the chat, and the case is closed by the operator.
func TestPathOperatorCloseWhileQueued(t *testing.T) {
	st := startStack(t, devstack.Options{})
	dc, tw := st.Discord, st.Twilio

	t.Run("task waiting", func(t *testing.T) {
		member := devstack.SandboxMembers[0]
		caseID, task := handToAgent(t, st, member.ID, "")
		closeConversation(t, st, member.ID)
		// An agent accepts at the moment the operator closes: too late (the task is canceled),
		// or just in time, and then the agent's task is closed under them. Either way nothing
		// reopens.
		if _, err := tw.AcceptTask(task.SID, "Ana"); err != nil && !errors.Is(err, twilioemu.ErrTaskState) {
			t.Fatalf("accept: %v", err)
		}
		waitFor(t, 20*time.Second, "the close notice", func() bool {
			r, ok := findBot(dc, member.ID, "Support closed this conversation")
			return ok && strings.Contains(r.Message.Content, caseID)
		})
		waitTaskEnded(t, tw, task.SID)
		waitDeliveries(t, tw, func(d twilioemu.Delivery) bool { return d.TaskSID == task.SID })
		closedByOperator(t, st, dc, member.ID, caseID)
	})

	t.Run("hand-over under way", func(t *testing.T) {
		member := devstack.SandboxMembers[2]
		// Flex takes its time creating the interaction; the operator closes meanwhile.
		if _, err := tw.InjectFault(twilioemu.Fault{Host: "flex-api", Method: http.MethodPost, Path: "/v1/Interactions", Latency: 3 * time.Second}); err != nil {
			t.Fatal(err)
		}
		say(t, dc, member.ID, "I want to talk to a human")
		waitFor(t, 20*time.Second, "the case announcement", func() bool { _, ok := findBot(dc, member.ID, "created. Transferring you"); return ok })
		var caseID string
		waitFor(t, 20*time.Second, "the hand-over under way", func() bool {
			s := conversationStatus(t, st, member.ID)
			caseID = s.CaseID
			return s.Transfer.Running
		})
		closeConversation(t, st, member.ID)
		waitFor(t, 20*time.Second, "the close notice", func() bool {
			r, ok := findBot(dc, member.ID, "Support closed this conversation")
			return ok && strings.Contains(r.Message.Content, caseID)
		})
		// The hand-over ends after the close: its task appears, and an agent tries to take it.
		var task twilioemu.TaskView
		waitFor(t, 20*time.Second, "the late task", func() bool {
			for _, tk := range tw.Tasks() {
				if tk.Attributes["case_id"] == caseID {
					task = tk
					return true
				}
			}
			return false
		})
		if _, err := tw.AcceptTask(task.SID, "Ana"); err != nil && !errors.Is(err, twilioemu.ErrTaskState) {
			t.Fatalf("accept: %v", err)
		}
		waitTaskEnded(t, tw, task.SID)
		waitDeliveries(t, tw, func(d twilioemu.Delivery) bool { return d.TaskSID == task.SID })
		closedByOperator(t, st, dc, member.ID, caseID)
	})
}

// TestPathThanksThenRating: "thanks!" after the wrap-up is not a new question; the rating request
// stays, and its buttons (which carry the case id) still rate the case.
func TestPathThanksThenRating(t *testing.T) {
	st := startStack(t, devstack.Options{})
	dc, tw := st.Discord, st.Twilio
	member := devstack.SandboxMembers[0]

	caseID, task := handToAgent(t, st, member.ID, "Ana")
	if _, err := tw.WrapUpTask(task.SID); err != nil {
		t.Fatal(err)
	}
	var rateMsg discordemu.Record
	waitFor(t, 20*time.Second, "the rating request", func() bool {
		var ok bool
		rateMsg, ok = findBot(dc, member.ID, "has been resolved")
		return ok
	})
	ids := customIDs(rateMsg)
	if len(ids) != 5 || ids[4] != "flexcord:rate:5:"+caseID {
		t.Fatalf("rating buttons = %q", ids)
	}
	before := len(botMessages(dc, member.ID))

	say(t, dc, member.ID, "thanks!")
	var s workflows.ConversationStatus
	waitFor(t, 20*time.Second, "the thanks taken", func() bool {
		s = conversationStatus(t, st, member.ID)
		return slices.ContainsFunc(s.Transcript, func(l activities.TranscriptLine) bool { return l.From == "member" && l.Text == "thanks!" })
	})
	if s.Stage != workflows.StageResolved || s.CaseID != caseID {
		t.Fatalf("after the thanks: stage %s case %s, want resolved, %s", s.Stage, s.CaseID, caseID)
	}
	if msgs := botMessages(dc, member.ID); len(msgs) != before {
		t.Fatalf("the bot answered the thanks: %q", msgs[before].Message.Content)
	}
	if r, _ := findBot(dc, member.ID, "has been resolved"); !slices.Equal(customIDs(r), ids) || allDisabled(r) {
		t.Fatalf("the rating request changed: %q", customIDs(r))
	}

	click(t, dc, member.ID, rateMsg, ids[4])
	waitFor(t, 20*time.Second, "the thanks for rating", func() bool { _, ok := findBot(dc, member.ID, "Thanks for rating us 5/5"); return ok })
	view := waitCase(t, st, caseID, "the rating on the case", func(v workflows.CaseView) bool { return v.Rating == 5 })
	if view.Status != workflows.CaseResolved || view.Outcome != workflows.OutcomeResolved {
		t.Errorf("case = status %s outcome %q, want resolved, resolved", view.Status, view.Outcome)
	}
	if n := len(botMessages(dc, member.ID)); n != before+1 {
		t.Errorf("%d bot messages after the rating, want %d", n, before+1)
	}
}

// TestPathWrapUpBeforeLastAgentMessage: the agent wraps the task up and then writes once more in
// the still open conversation; the member gets it. Once the conversation is closed (by Twilio's
// closed timer, as after every wrap-up), nothing more is relayed.
func TestPathWrapUpBeforeLastAgentMessage(t *testing.T) {
	st := startStack(t, devstack.Options{})
	dc, tw := st.Discord, st.Twilio
	member := devstack.SandboxMembers[0]
	rc := twilioclient.New(twilioclient.Credentials{AccountSID: devstack.SandboxTwilioAccountSID, AuthToken: devstack.SandboxTwilioAuthToken}, tw.Transport())

	caseID, task := handToAgent(t, st, member.ID, "Ana")
	// The wrap-up of the task alone (TaskRouter): Flex keeps the conversation open.
	if _, err := rc.TaskrouterV1.UpdateTask(tw.Workspace().SID, task.SID,
		(&taskrouter.UpdateTaskParams{}).SetAssignmentStatus("wrapping").SetReason("agent wrapped up")); err != nil {
		t.Fatal(err)
	}
	var rateMsg discordemu.Record
	waitFor(t, 20*time.Second, "the rating request", func() bool {
		var ok bool
		rateMsg, ok = findBot(dc, member.ID, "has been resolved")
		return ok
	})
	if c, err := tw.Conversation(task.ConversationSID); err != nil || c.State != "active" {
		t.Fatalf("Flex conversation: %s, %v; want active after the task's wrap-up", c.State, err)
	}
	last, err := tw.SendAgentMessage(task.SID, "one last thing: your refund is on its way")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the last agent message", func() bool {
		return countBot(dc, member.ID, "one last thing: your refund is on its way") == 1
	})

	// A day later Twilio's closed timer closes the conversation.
	if _, err := tw.AdvanceClock(25 * time.Hour); err != nil {
		t.Fatal(err)
	}
	if c, err := tw.Conversation(task.ConversationSID); err != nil || c.State != "closed" {
		t.Fatalf("Flex conversation: %s, %v; want closed by its timer", c.State, err)
	}
	waitDeliveries(t, tw, func(d twilioemu.Delivery) bool {
		return d.ConversationSID == task.ConversationSID && d.EventType == "onConversationStateUpdated" && d.Params.Get("StateTo") == "closed"
	})
	// A webhook for a message after the close (late, or from another tool) is not relayed.
	var hook twilioemu.Delivery
	for _, d := range tw.Deliveries() {
		if d.EventType == "onMessageAdded" && d.Params.Get("MessageSid") == last.SID {
			hook = d
		}
	}
	if hook.URL == "" {
		t.Fatal("no onMessageAdded delivery for the last agent message")
	}
	late := url.Values{}
	for k, v := range hook.Params {
		late[k] = slices.Clone(v)
	}
	late.Del("RetryCount")
	late.Set("MessageSid", "IM"+randomHex(16))
	late.Set("Index", strconv.Itoa(last.Index+1))
	late.Set("Body", "too late to be relayed")
	if code := postTwilio(t, hook.URL, twilioemu.Signature(devstack.SandboxTwilioAuthToken, hook.URL, late), late); code != http.StatusOK {
		t.Fatalf("late webhook answered %d", code)
	}

	// The rating, after the late webhook, is the last thing the member hears about.
	click(t, dc, member.ID, rateMsg, "flexcord:rate:4:"+caseID)
	waitFor(t, 20*time.Second, "the thanks for rating", func() bool { _, ok := findBot(dc, member.ID, "Thanks for rating us 4/5"); return ok })
	if n := countBot(dc, member.ID, "too late to be relayed"); n != 0 {
		t.Errorf("a message after the close was relayed %d times", n)
	}
	if n := countBot(dc, member.ID, "one last thing"); n != 1 {
		t.Errorf("the last agent message was relayed %d times", n)
	}
}

// TestPathBackfillAfterGatewayGap: the gateway loses the member's DMs for a while (as when ingress
// is down longer than its session can be resumed). When the gateway resumes, ingress backfills
// them from the DM channel: each reaches the agent once, in order.
func TestPathBackfillAfterGatewayGap(t *testing.T) {
	st := startStack(t, devstack.Options{})
	dc, tw := st.Discord, st.Twilio
	member := devstack.SandboxMembers[0]

	_, task := handToAgent(t, st, member.ID, "Ana")
	say(t, dc, member.ID, "before the gap")
	waitFor(t, 20*time.Second, "the first line in Flex", func() bool {
		return slices.Contains(customerLines(tw, task.ConversationSID), "before the gap")
	})

	dc.MissDispatches("MESSAGE_CREATE")
	for i := 1; i <= 3; i++ {
		say(t, dc, member.ID, fmt.Sprintf("missed %d", i))
	}
	if n := dc.StopMissingDispatches(); n != 3 {
		t.Fatalf("the gateway missed %d dispatches, want 3", n)
	}
	if got := customerLines(tw, task.ConversationSID); len(got) != 1 {
		t.Fatalf("Flex got %q before the gateway resumed", got)
	}
	if dc.ReconnectGateway() == 0 {
		t.Fatal("no gateway connection to reconnect")
	}
	waitFor(t, 30*time.Second, "the missed DMs in Flex", func() bool {
		return slices.Contains(customerLines(tw, task.ConversationSID), "missed 3")
	})
	say(t, dc, member.ID, "after the gap")
	waitFor(t, 20*time.Second, "the next live DM in Flex", func() bool {
		return slices.Contains(customerLines(tw, task.ConversationSID), "after the gap")
	})
	want := "before the gap|missed 1|missed 2|missed 3|after the gap"
	if got := strings.Join(customerLines(tw, task.ConversationSID), "|"); got != want {
		t.Errorf("Flex conversation holds %q, want %q", got, want)
	}
	if s := conversationStatus(t, st, member.ID); s.Stage != workflows.StageLive {
		t.Errorf("stage = %s, want live", s.Stage)
	}
}

// TestPathWebhookAnswered503: ingress answers an agent message's webhook with 503 (first after
// taking it, as when the answer is lost, then without taking it, as when it is overloaded).
// Twilio sends the webhook again, as the connection overrides on flexcord's webhook URL ask, and
// the member gets the message exactly once.
func TestPathWebhookAnswered503(t *testing.T) {
	const text = "your refund went through despite the outage"
	var (
		mu       sync.Mutex
		attempts int
		inner    []int // what ingress itself answered, per attempt it saw
	)
	outage := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || r.URL.Path != ingress.TwilioConversationsPath {
				next.ServeHTTP(w, r)
				return
			}
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			form, _ := url.ParseQuery(string(body))
			if form.Get("EventType") != "onMessageAdded" || form.Get("Body") != text {
				next.ServeHTTP(w, r)
				return
			}
			mu.Lock()
			attempts++
			n := attempts
			mu.Unlock()
			switch {
			case n == 1:
				rec := httptest.NewRecorder()
				next.ServeHTTP(rec, r)
				mu.Lock()
				inner = append(inner, rec.Code)
				mu.Unlock()
				ingress.WriteBusy(w)
			case n <= 3:
				ingress.WriteBusy(w)
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
	st := startStack(t, devstack.Options{IngressMiddleware: outage})
	dc, tw := st.Discord, st.Twilio
	member := devstack.SandboxMembers[0]

	_, task := handToAgent(t, st, member.ID, "Ana")
	msg, err := tw.SendAgentMessage(task.SID, text)
	if err != nil {
		t.Fatal(err)
	}
	var d twilioemu.Delivery
	waitFor(t, 40*time.Second, "the webhook delivered", func() bool {
		for _, x := range tw.Deliveries() {
			if x.EventType == "onMessageAdded" && x.Params.Get("MessageSid") == msg.SID {
				d = x
			}
		}
		return d.State != twilioemu.DeliveryPending && d.State != ""
	})
	if d.State != twilioemu.DeliveryDelivered || d.Attempts != 4 || d.LastStatus != http.StatusOK {
		t.Fatalf("delivery %s after %d attempts (last status %d), want delivered on the 4th", d.State, d.Attempts, d.LastStatus)
	}
	mu.Lock()
	if len(inner) != 1 || inner[0] != http.StatusOK {
		t.Errorf("ingress answered %v to the attempt it took, want 200", inner)
	}
	mu.Unlock()
	ov, _ := url.ParseQuery(d.Overrides)
	rcount, _ := strconv.Atoi(ov.Get("rc"))
	if rp := ov.Get("rp"); rcount < 3 || !(strings.Contains(rp, "all") || strings.Contains(rp, "5xx")) {
		t.Errorf("webhook connection overrides %q do not retry a 503 three times", d.Overrides)
	}

	waitFor(t, 20*time.Second, "the agent message", func() bool { return countBot(dc, member.ID, text) >= 1 })
	if _, err := tw.SendAgentMessage(task.SID, "marker"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the marker", func() bool { return countBot(dc, member.ID, "marker") == 1 })
	if n := countBot(dc, member.ID, text); n != 1 {
		t.Errorf("the agent message reached the member %d times", n)
	}
}

// TestPathAgentAcceptsBeforeFlexAnswers: Flex routes the task while flexcord still waits for the
// answer to creating the interaction, and the agent accepts at once. The hand-over stands: the
// agent keeps the task and the chat relays both ways. (Found by the chaos run: the late answer
// was taken for an abandoned hand-over and withdrawn, completing the agent's task.)
func TestPathAgentAcceptsBeforeFlexAnswers(t *testing.T) {
	st := startStack(t, devstack.Options{})
	dc, tw := st.Discord, st.Twilio
	member := devstack.SandboxMembers[0]

	// Recording the interaction on its conversation, once its task exists, takes 2 s.
	if _, err := tw.InjectFault(twilioemu.Fault{Host: "conversations", Method: http.MethodPost, Path: "/v1/Conversations/*", Latency: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	say(t, dc, member.ID, "I want to talk to a human")
	task := waitTask(t, tw, "")
	if s := conversationStatus(t, st, member.ID); !s.Transfer.Running {
		t.Fatal("the hand-over finished before the agent could accept")
	}
	if _, err := tw.AcceptTask(task.SID, "Ana"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "Ana joined", func() bool { return countBot(dc, member.ID, "Ana joined") == 1 })
	waitFor(t, 20*time.Second, "the hand-over's answer", func() bool {
		s := conversationStatus(t, st, member.ID)
		return !s.Transfer.Running && s.Flex != nil && s.Flex.TaskSID == task.SID
	})

	say(t, dc, member.ID, "my order 1234 never arrived")
	if _, err := tw.SendAgentMessage(task.SID, "let me look into it"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "a message each way", func() bool {
		return countBot(dc, member.ID, "let me look into it") == 1 &&
			slices.Contains(customerLines(tw, task.ConversationSID), "my order 1234 never arrived")
	})
	if tk, err := tw.Task(task.SID); err != nil || tk.Status != twilioemu.TaskAssigned || tk.ConversationState != "active" {
		t.Errorf("task %s: %s, conversation %s (%v); want assigned and active", task.SID, tk.Status, tk.ConversationState, err)
	}
	if s := conversationStatus(t, st, member.ID); s.Stage != workflows.StageLive {
		t.Errorf("stage = %s, want live", s.Stage)
	}
	noResolution(t, dc, member.ID)
}

// --- helpers --------------------------------------------------------------------------------

// say sends a DM from the member to the bot.
func say(t *testing.T, dc *discordemu.Server, userID, text string) {
	t.Helper()
	if _, err := dc.SendDM(userID, text); err != nil {
		t.Fatal(err)
	}
}

// helpMe runs /helpme in the guild's general channel, in English.
func helpMe(t *testing.T, dc *discordemu.Server, userID string) discordemu.InteractionInfo {
	t.Helper()
	info, err := dc.RunCommand(context.Background(), userID, discordemu.CommandInput{
		Name: "helpme", GuildID: devstack.SandboxGuildID, ChannelID: devstack.SandboxGeneralChannel, Locale: "en-US"})
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// click presses a button of a bot message, in English.
func click(t *testing.T, dc *discordemu.Server, userID string, msg discordemu.Record, customID string) {
	t.Helper()
	if _, err := dc.ClickButton(context.Background(), userID, discordemu.ButtonInput{MessageID: msg.Message.ID, CustomID: customID, Locale: "en-US"}); err != nil {
		t.Fatalf("click %s: %v", customID, err)
	}
}

// handToAgent asks for a person by DM and returns the case and its waiting Flex task; with an
// agent name, that agent accepts it and the member is told.
func handToAgent(t *testing.T, st *devstack.Stack, userID, agent string) (string, twilioemu.TaskView) {
	t.Helper()
	say(t, st.Discord, userID, "I want to talk to a human")
	waitFor(t, 20*time.Second, "the case announcement", func() bool {
		_, ok := findBot(st.Discord, userID, "created. Transferring you")
		return ok
	})
	caseID := conversationStatus(t, st, userID).CaseID
	if !workflows.ValidCaseID(caseID) {
		t.Fatalf("case id %q", caseID)
	}
	task := waitTask(t, st.Twilio, caseID)
	if agent != "" {
		if _, err := st.Twilio.AcceptTask(task.SID, agent); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, agent+" joined", func() bool { return countBot(st.Discord, userID, agent+" joined") == 1 })
	}
	return caseID, task
}

// customerLines lists the member's messages in a Flex conversation, in order.
func customerLines(tw *twilioemu.Server, conversationSID string) []string {
	msgs, _ := tw.ConversationMessages(conversationSID)
	var out []string
	for _, m := range msgs {
		if strings.HasPrefix(m.Author, "discord:") {
			out = append(out, m.Body)
		}
	}
	return out
}

// waitAnswer waits until the deferred answer to an interaction shows text and no longer shows
// Discord's "thinking…".
func waitAnswer(t *testing.T, dc *discordemu.Server, userID, interactionID, text string) {
	t.Helper()
	const loading = 1 << 7 // Discord's LOADING message flag
	var last discordemu.Record
	deadline := time.Now().Add(20 * time.Second)
	for {
		info := dc.Interaction(interactionID)
		for _, r := range dc.UserMessages(userID) {
			if info.ResponseMessageID != "" && r.Message.ID == info.ResponseMessageID {
				last = r
			}
		}
		if last.Message.Flags&loading == 0 && strings.Contains(last.Message.Content, text) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the answer to interaction %s is %q (flags %d), want %q and not loading", interactionID, last.Message.Content, last.Message.Flags, text)
		}
		time.Sleep(25 * time.Millisecond) // polling interval
	}
}

// waitNoAgentOffer waits for the "no agent is free" message and checks its buttons.
func waitNoAgentOffer(t *testing.T, dc *discordemu.Server, userID, caseID string) discordemu.Record {
	t.Helper()
	var offer discordemu.Record
	waitFor(t, 20*time.Second, "the no-agent offer", func() bool {
		var ok bool
		offer, ok = findBot(dc, userID, "No agent is free")
		return ok
	})
	if !strings.Contains(offer.Message.Content, caseID) {
		t.Errorf("the offer does not name case %s: %q", caseID, offer.Message.Content)
	}
	if ids := customIDs(offer); strings.Join(ids, " ") != "flexcord:wait:"+caseID+" flexcord:leave:"+caseID {
		t.Fatalf("offer buttons = %q", ids)
	}
	noResolution(t, dc, userID)
	return offer
}

// noResolution checks that the member was never told the chat was resolved nor asked to rate it.
func noResolution(t *testing.T, dc *discordemu.Server, userID string) {
	t.Helper()
	for _, r := range botMessages(dc, userID) {
		if strings.Contains(r.Message.Content, "has been resolved") || strings.Contains(strings.Join(customIDs(r), " "), "flexcord:rate:") {
			t.Errorf("the member was asked for a rating: %q", r.Message.Content)
		}
	}
}

// allDisabled reports whether a message has buttons and all of them are disabled.
func allDisabled(r discordemu.Record) bool {
	raw, _ := json.Marshal(r.Message.Components)
	var rows []struct {
		Components []struct {
			Disabled bool `json:"disabled"`
		} `json:"components"`
	}
	_ = json.Unmarshal(raw, &rows)
	n := 0
	for _, row := range rows {
		for _, c := range row.Components {
			if !c.Disabled {
				return false
			}
			n++
		}
	}
	return n > 0
}

// closeConversation runs the operator's Close update, as `flexcord conversations close` does.
func closeConversation(t *testing.T, st *devstack.Stack, userID string) {
	t.Helper()
	ctx := context.Background()
	h, err := st.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflows.ConversationWorkflowID(userID), UpdateName: workflows.UpdateClose,
		Args:         []any{workflows.CloseRequest{Reason: "duplicate of another case", Operator: "e2e"}},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		t.Fatalf("close: %v", err)
	}
	var s workflows.ConversationStatus
	if err := h.Get(ctx, &s); err != nil {
		t.Fatalf("close: %v", err)
	}
	if s.Stage != workflows.StageClosed {
		t.Fatalf("stage after the close = %s", s.Stage)
	}
}

// closedByOperator checks, once everything from Flex has been taken, that the operator's close
// held: the member heard no more about the chat, the conversation stayed closed, and the case was
// closed by the operator.
func closedByOperator(t *testing.T, st *devstack.Stack, dc *discordemu.Server, userID, caseID string) {
	t.Helper()
	if s := conversationStatus(t, st, userID); s.Stage != workflows.StageClosed || s.ClosedReason != workflows.ReasonByOperator {
		t.Errorf("conversation = stage %s reason %q, want closed by the operator", s.Stage, s.ClosedReason)
	}
	view := waitCase(t, st, caseID, "the case closed by the operator", func(v workflows.CaseView) bool {
		return v.Status == workflows.CaseClosed
	})
	if view.Outcome != workflows.OutcomeClosedByOperator {
		t.Errorf("case outcome %q, want %s", view.Outcome, workflows.OutcomeClosedByOperator)
	}
	// A new question after everything: its answer comes after anything still on its way.
	say(t, dc, userID, "hello again")
	waitFor(t, 20*time.Second, "the bot's answer to a new question", func() bool {
		_, a := findBot(dc, userID, "Here's what I found")
		_, b := findBot(dc, userID, "couldn't find a help article")
		return a || b
	})
	if n := countBot(dc, userID, "joined"); n != 0 {
		t.Errorf("the member was told an agent joined after the close")
	}
	if n := countBot(dc, userID, "created. Transferring you"); n != 1 {
		t.Errorf("the member was told %d times that a case was created", n)
	}
	if n := countBot(dc, userID, "Support closed this conversation"); n != 1 {
		t.Errorf("the member was told %d times that support closed the conversation", n)
	}
}

// waitTaskEnded waits for a Flex task to be canceled or completed.
func waitTaskEnded(t *testing.T, tw *twilioemu.Server, taskSID string) twilioemu.TaskView {
	t.Helper()
	var tk twilioemu.TaskView
	waitFor(t, 20*time.Second, "task "+taskSID+" ended", func() bool {
		var err error
		tk, err = tw.Task(taskSID)
		return err == nil && (tk.Status == twilioemu.TaskCanceled || tk.Status == twilioemu.TaskCompleted)
	})
	return tk
}

// waitDeliveries waits until every webhook and event callback that match is delivered.
func waitDeliveries(t *testing.T, tw *twilioemu.Server, match func(twilioemu.Delivery) bool) {
	t.Helper()
	waitFor(t, 20*time.Second, "the webhooks delivered", func() bool {
		n := 0
		for _, d := range tw.Deliveries() {
			if !match(d) {
				continue
			}
			if d.State != twilioemu.DeliveryDelivered {
				return false
			}
			n++
		}
		return n > 0
	})
}

// waitCase waits until the Case workflow's view satisfies cond and returns it.
func waitCase(t *testing.T, st *devstack.Stack, caseID, what string, cond func(workflows.CaseView) bool) workflows.CaseView {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var view workflows.CaseView
		v, err := st.Client.QueryWorkflow(context.Background(), workflows.CaseWorkflowID(caseID), "", workflows.QueryStatus)
		if err == nil {
			err = v.Get(&view)
		}
		if err == nil && cond(view) {
			return view
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: case %s status %s outcome %q rating %d (%v)", what, caseID, view.Status, view.Outcome, view.Rating, err)
		}
		time.Sleep(25 * time.Millisecond) // polling interval
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
