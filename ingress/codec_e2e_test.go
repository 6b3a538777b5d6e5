package ingress_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/internal/payloadcodec"
	"github.com/flexcord/flexcord/worker"
	"github.com/flexcord/flexcord/workflows"
)

// startMemberWorkers is startMemberSide's pair of workers on tc for member, stopped by the
// returned function (or when the test ends).
func startMemberWorkers(t *testing.T, tc client.Client, member *memberSide) (stop func()) {
	t.Helper()
	w := worker.New(tc, worker.Activities{}, sdkworker.Options{})
	member.register(w)
	dw := sdkworker.New(tc, workflows.DiscordTaskQueue, sdkworker.Options{DisableWorkflowWorker: true})
	member.register(dw)
	for _, x := range []sdkworker.Worker{w, dw} {
		if err := x.Start(); err != nil {
			t.Fatal(err)
		}
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			w.Stop()
			dw.Stop()
		}
	}
	t.Cleanup(stop)
	return stop
}

// TestConversationContinuesAfterKeysAreSet: a conversation started before encryption was turned
// on goes on once workers, ingress and clients have keys. The new workers replay its plain
// history, its new signals are written encrypted, and what it wrote before stays plain.
func TestConversationContinuesAfterKeysAreSet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)
	plain, ns := startTemporal(ctx, t)
	codec := testCodec(t)
	enc, err := client.NewClientFromExisting(plain, client.Options{
		Namespace: ns, Logger: sdklog.NewStructuredLogger(quiet),
		DataConverter: payloadcodec.DataConverter(codec), FailureConverter: payloadcodec.FailureConverter(codec),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()

	member := &memberSide{}
	m := workflows.Member{UserID: e2eUserID, Username: "alice"}
	say := func(tc client.Client, eventID, text string) {
		t.Helper()
		in := ingress.New(ingress.Config{Temporal: tc, Log: quiet})
		if err := in.StartConversation(ctx, m, "1000000000000000001", "Example Guild", "en-US", workflows.SignalUserMessage,
			workflows.UserMessageSignal{EventID: eventID, Member: m, ChannelID: "dm-1", Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	transcript := func(tc client.Client) string {
		v, err := tc.QueryWorkflow(ctx, workflows.ConversationWorkflowID(e2eUserID), "", workflows.QueryStatus)
		if err != nil {
			return ""
		}
		var st workflows.ConversationStatus
		if err := v.Get(&st); err != nil {
			return ""
		}
		var lines []string
		for _, l := range st.Transcript {
			lines = append(lines, l.From+": "+l.Text)
		}
		return strings.Join(lines, "\n")
	}

	// Before: no keys anywhere.
	const before, after = "written before the keys, lilac-heron", "written after the keys, amber-fox"
	stopPlain := startMemberWorkers(t, plain, member)
	say(plain, "3000000000000000001", before)
	eventually(t, "the bot's answer to the first message", func() bool { return len(member.texts()) >= 1 })
	eventually(t, "the first message in the transcript", func() bool { return strings.Contains(transcript(plain), before) })
	stopPlain()

	// After: workers, ingress and the operator's client have keys.
	startMemberWorkers(t, enc, member)
	answered := len(member.texts())
	say(enc, "3000000000000000002", after)
	eventually(t, "the second message in the transcript", func() bool {
		tr := transcript(enc)
		return strings.Contains(tr, before) && strings.Contains(tr, after)
	})
	eventually(t, "the bot's answer to the second message", func() bool { return len(member.texts()) > answered })

	// The history: the first signal plain as it was written, the second encrypted.
	var sawBefore, sawAfterEncrypted bool
	it := plain.GetWorkflowHistory(ctx, workflows.ConversationWorkflowID(e2eUserID), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		sig := ev.GetWorkflowExecutionSignaledEventAttributes()
		if sig == nil || sig.GetSignalName() != workflows.SignalUserMessage {
			continue
		}
		p := sig.GetInput().GetPayloads()[0]
		if strings.Contains(string(p.GetData()), after) {
			t.Errorf("the message sent with keys is plain in event %d", ev.GetEventId())
		}
		var got workflows.UserMessageSignal
		switch string(p.GetMetadata()[converter.MetadataEncoding]) {
		case payloadcodec.Encoding:
			if err := payloadcodec.DataConverter(codec).FromPayload(p, &got); err != nil {
				t.Fatal(err)
			}
			sawAfterEncrypted = sawAfterEncrypted || got.Text == after
		default:
			if err := converter.GetDefaultDataConverter().FromPayload(p, &got); err != nil {
				t.Fatal(err)
			}
			sawBefore = sawBefore || got.Text == before
		}
	}
	if !sawBefore || !sawAfterEncrypted {
		t.Errorf("plain signal before the keys: %v; encrypted signal after: %v", sawBefore, sawAfterEncrypted)
	}
}
