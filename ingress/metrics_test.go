package ingress_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/mocks"

	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/internal/telemetry"
	"github.com/flexcord/flexcord/internal/telemetry/telemetrytest"
	"github.com/flexcord/flexcord/workflows"
)

// TestSignalsAreCountedByNameAndOutcome checks flexcord_signals: every signal ingress and the
// gateway send (they share these methods) is counted, by signal name and outcome.
func TestSignalsAreCountedByNameAndOutcome(t *testing.T) {
	tel, err := telemetry.Setup(context.Background(), "flexcord-ingress-test", "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	tc := mocks.NewClient(t)
	s := ingress.New(ingress.Config{Temporal: tc, Telemetry: tel, MaxInFlight: 1})
	ctx := context.Background()
	member := workflows.Member{UserID: "42", Username: "mika"}

	tc.On("SignalWithStartWorkflow", mock.Anything, workflows.ConversationWorkflowID("42"), workflows.SignalUserMessage,
		mock.Anything, mock.Anything, mock.Anything, mock.Anything).Return(nil, nil).Twice()
	tc.On("SignalWorkflow", mock.Anything, workflows.ConversationWorkflowID("42"), "", workflows.SignalAgentJoined, mock.Anything).
		Return(nil).Once()
	tc.On("SignalWorkflow", mock.Anything, workflows.ConversationWorkflowID("42"), "", workflows.SignalAgentMessage, mock.Anything).
		Return(errors.New("deadline exceeded")).Once()
	for range 2 {
		if err := s.StartConversation(ctx, member, "g1", "", "en-US", workflows.SignalUserMessage, workflows.UserMessageSignal{EventID: "m1"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SignalConversation(ctx, "42", workflows.SignalAgentJoined, workflows.AgentJoinedSignal{EventID: "EV1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SignalConversation(ctx, "42", workflows.SignalAgentMessage, workflows.AgentMessageSignal{EventID: "IM1"}); err == nil {
		t.Fatal("want the Temporal error")
	}
	// A signal while the only in-flight slot is taken is turned away: busy.
	entered, release := make(chan struct{}), make(chan struct{})
	tc.On("SignalWorkflow", mock.Anything, workflows.ConversationWorkflowID("42"), "", workflows.SignalAgentWrappedUp, mock.Anything).
		Run(func(mock.Arguments) { close(entered); <-release }).Return(nil).Once()
	done := make(chan error, 1)
	go func() {
		done <- s.SignalConversation(ctx, "42", workflows.SignalAgentWrappedUp, workflows.AgentWrappedUpSignal{EventID: "EV2"})
	}()
	<-entered
	if err := s.SignalConversation(ctx, "42", workflows.SignalAgentMessage, workflows.AgentMessageSignal{EventID: "IM2"}); !errors.Is(err, ingress.ErrBusy) {
		t.Errorf("signal beyond the in-flight limit: %v, want ErrBusy", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	m := telemetrytest.Scrape(t, tel.MetricsHandler)
	if typ := m.Type("flexcord_signals_total"); typ != "counter" {
		t.Errorf("# TYPE flexcord_signals_total = %q", typ)
	}
	if help, _ := m.Help("flexcord_signals_total"); help == "" {
		t.Error("flexcord_signals_total has no help text")
	}
	for _, c := range []struct {
		signal, outcome string
		want            float64
	}{
		{workflows.SignalUserMessage, "ok", 2},
		{workflows.SignalAgentJoined, "ok", 1},
		{workflows.SignalAgentMessage, "error", 1},
		{workflows.SignalAgentMessage, "ok", 0},
		{workflows.SignalAgentMessage, "busy", 1},
		{workflows.SignalAgentWrappedUp, "ok", 1},
	} {
		if got, _ := m.Value("flexcord_signals_total", "signal", c.signal, "outcome", c.outcome); got != c.want {
			t.Errorf("flexcord_signals_total{signal=%q,outcome=%q} = %v, want %v", c.signal, c.outcome, got, c.want)
		}
	}
}
