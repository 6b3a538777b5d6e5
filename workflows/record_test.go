package workflows

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/internal/transcript"
)

// A whole journey leaves one transcript of the case in the blob store, complete and in order:
// the bot stage, the hand-over, the live chat, the wrap-up and the rating. The agent got the bot
// stage when the case was handed over, and the member is offered the file.
func TestRecordOfAWholeJourney(t *testing.T) {
	c := newConvTest(t)
	c.signal(SignalHelpRequested, help("i1"))
	c.signal(SignalUserMessage, msg("m1", "I forgot my password"))
	c.signal(SignalUserAction, action("i2", ActionTalkToHuman, 0))
	c.signal(SignalUserMessage, msg("m2", "still there?"))
	c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"})
	c.signal(SignalAgentMessage, AgentMessageSignal{EventID: "IM1", Text: "Hi Mika, I can help."})
	for i := range 25 { // more than one chunk while live
		c.signal(SignalUserMessage, msg(fmt.Sprint("m", 10+i), fmt.Sprint("line ", i)))
	}
	c.signal(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV2"})
	c.signal(SignalUserAction, action("i3", ActionRate, 5))

	res := c.run(ConversationOptions{})

	lines := c.fakes.records.transcript(res.CaseID)
	var got []string
	for i, e := range lines {
		if e.Seq != i+1 {
			t.Fatalf("line %d has seq %d: the transcript has a gap or a double", i+1, e.Seq)
		}
		got = append(got, e.Kind+": "+e.Text)
	}
	want := []string{
		"bot: Hi Mika!", "member: I forgot my password", "bot: Suggested:", "member: [Talk to a human]",
		"system: Case " + res.CaseID + " created", "bot: Case " + res.CaseID + " created",
		"member: still there?", "system: Ana joined", "agent: Hi Mika, I can help.", "member: line 0", "member: line 24",
		"system: The agent wrapped up", "bot: Your case " + res.CaseID + " has been resolved",
		"bot: Would you like a copy of this chat?", "member: [Rated 5/5]",
	}
	at := 0
	for _, w := range want {
		i := slices.IndexFunc(got[at:], func(g string) bool { return strings.HasPrefix(g, w) })
		if i < 0 {
			t.Fatalf("the transcript lacks %q after line %d, or has it out of order:\n%s", w, at, strings.Join(got, "\n"))
		}
		at += i + 1
	}
	if c.fakes.records.users[res.CaseID] != testUser {
		t.Errorf("the transcript is kept for member %q", c.fakes.records.users[res.CaseID])
	}
	if c.fakes.records.writes < 2 {
		t.Errorf("%d writes: a live chat of 25 lines should be written in chunks", c.fakes.records.writes)
	}

	// The agent got the bot stage, up to the case, at the hand-over.
	bot := c.fakes.created[0].BotPhase
	if len(bot) == 0 || bot[0].Text != lines[0].Text || !slices.ContainsFunc(bot, func(e transcript.Entry) bool { return e.Text == "I forgot my password" }) {
		t.Errorf("bot stage given to the agent = %+v", bot)
	}
	// The member is offered the transcript after the wrap-up, as a button of the case.
	offer := slices.IndexFunc(c.fakes.dms, func(d activities.SendDirectMessageInput) bool {
		return len(d.Message.Buttons) == 1 && d.Message.Buttons[0].CustomID == "flexcord:transcript:"+res.CaseID
	})
	if offer < 0 {
		t.Errorf("no DM offers the transcript: %q", c.fakes.dmTexts())
	}
}

// A conversation that never becomes a case writes nothing: there is no case to keep.
func TestRecordNothingWithoutACase(t *testing.T) {
	c := newConvTest(t)
	c.signal(SignalHelpRequested, help("i1"))
	c.signal(SignalUserMessage, msg("m1", "I forgot my password"))
	c.signal(SignalUserAction, action("i2", ActionSolved, 0))
	res := c.run(ConversationOptions{})
	if res.CaseID != "" || c.fakes.records.writes != 0 {
		t.Fatalf("case %q, %d transcript writes", res.CaseID, c.fakes.records.writes)
	}
}

// The blob store failing for a while loses nothing: the lines wait in the workflow's state and
// are written once it is back. One that never comes back lets the conversation end anyway.
func TestRecordSurvivesAFailingBlobStore(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failures int
		lost     bool
	}{{"back after 25 failed tries", 25, false}, {"never back", 1 << 30, true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newConvTest(t)
			n := 0
			c.fakes.records.fail = func() bool { n++; return n <= tc.failures }
			c.signal(SignalUserMessage, ask("m1", "I want to talk to a human"))
			c.signal(SignalAgentJoined, AgentJoinedSignal{EventID: "EV1", AgentName: "Ana"})
			c.signal(SignalAgentWrappedUp, AgentWrappedUpSignal{EventID: "EV2"})
			c.signal(SignalUserAction, action("i3", ActionRate, 4))
			var st ConversationStatus
			// A write is tried 10 times over about six minutes: the first has failed by then, the
			// second fails at about twelve, the third gets through.
			c.after(9*time.Minute, func() { st = c.status() })
			res := c.run(ConversationOptions{})
			lines := c.fakes.records.transcript(res.CaseID)
			if tc.lost {
				if len(lines) != 0 {
					t.Fatalf("%d lines written through a store that always fails", len(lines))
				}
				return
			}
			if st.TranscriptUnsaved == 0 || st.TranscriptError == "" {
				t.Errorf("while the store failed the status showed %d unsaved lines, error %q", st.TranscriptUnsaved, st.TranscriptError)
			}
			if len(lines) < 2 || lines[len(lines)-2].Text != "[Rated 4/5]" || !strings.HasPrefix(lines[len(lines)-1].Text, "Thanks for rating") {
				t.Fatalf("transcript after the store came back = %+v", lines)
			}
		})
	}
}

// Send me the transcript: the member gets their file; a case with no transcript (none kept, or
// erased) gets them a DM that says so, and nobody else's transcript is ever sent.
func TestSendTranscriptWorkflow(t *testing.T) {
	run := func(t *testing.T, f *fakeProviders, in SendTranscriptInput) (activities.SendTranscriptResult, error) {
		var s testsuite.WorkflowTestSuite
		s.SetLogger(quietLogger())
		env := s.NewTestWorkflowEnvironment()
		env.RegisterWorkflow(SendTranscript)
		f.register(env)
		env.ExecuteWorkflow(SendTranscript, in)
		var res activities.SendTranscriptResult
		err := env.GetWorkflowError()
		if err == nil {
			err = env.GetWorkflowResult(&res)
		}
		return res, err
	}
	f := newFakeProviders()
	_ = f.records.SaveTranscript(context.Background(), activities.SaveTranscriptInput{Chunk: transcript.Chunk{
		DiscordUserID: testUser, TranscriptID: "C-7K3QX2", Entries: []transcript.Entry{{Seq: 1, Kind: transcript.KindMember, Text: "hi"}}}})

	res, err := run(t, f, SendTranscriptInput{UserID: testUser, CaseID: "C-7K3QX2", Locale: "en-US", EventID: "1300000000000000001"})
	if err != nil || res.Lines != 1 || len(f.records.sent) != 1 || f.records.sent[0].Content != "Here is the transcript of case C-7K3QX2." {
		t.Fatalf("result %+v, %v; sent %+v", res, err, f.records.sent)
	}
	if len(f.dms) != 0 {
		t.Errorf("DMs besides the file: %q", f.dmTexts())
	}

	// Another member asking for this case, or a case never written: a DM says so.
	for _, in := range []SendTranscriptInput{
		{UserID: "1002", CaseID: "C-7K3QX2", Locale: "en-US", EventID: "1300000000000000002"},
		{UserID: testUser, CaseID: "C-22222Z", Locale: "pt-BR", EventID: "1300000000000000003"},
	} {
		if _, err := run(t, f, in); err == nil {
			t.Errorf("%+v: no error", in)
		}
	}
	if got := f.dmTexts(); len(got) != 2 || !strings.Contains(got[0], "I couldn't find a transcript of case C-7K3QX2") ||
		!strings.Contains(got[1], "Não encontrei uma transcrição do caso C-22222Z") || f.dms[0].UserID != "1002" {
		t.Errorf("DMs = %q", got)
	}
	if len(f.records.sent) != 1 {
		t.Errorf("%d files sent; only the member's own transcript may be", len(f.records.sent))
	}
}
