package worker_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/internal/devserver"
	"github.com/flexcord/flexcord/workflows"
)

// BenchmarkSignalToActivity measures, through the embedded server, the time from an agent's
// message signal to the start of the activity that delivers it to the member: the relay's
// critical path. "tuned" is the configuration flexcord dev ships; "default" is Temporal's.
func BenchmarkSignalToActivity(b *testing.B) {
	for _, bc := range []struct {
		name    string
		untuned bool
	}{{"tuned", false}, {"default", true}} {
		b.Run(bc.name, func(b *testing.B) {
			s := startStack(b, devserver.Options{Untuned: bc.untuned})
			ctx := context.Background()
			in := ingress.New(ingress.Config{Temporal: s.client})
			member := workflows.Member{UserID: "bench"}
			started := make(chan time.Time, 16)
			if err := in.StartConversation(ctx, member, "", "", "en-US", workflows.SignalUserMessage,
				workflows.UserMessageSignal{EventID: "m0", Member: member, Text: "human please", WantsHuman: true}); err != nil {
				b.Fatal(err)
			}
			eventually(b, 30*time.Second, "the transfer", func() bool {
				v, err := s.client.QueryWorkflow(ctx, workflows.ConversationWorkflowID("bench"), "", workflows.QueryStatus)
				var st workflows.ConversationStatus
				return err == nil && v.Get(&st) == nil && st.Flex != nil && len(st.Pending) == 0 && len(st.InFlight) == 0
			})
			s.rec.mu.Lock()
			s.rec.started = started
			s.rec.mu.Unlock()

			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				sent := time.Now()
				if err := in.SignalConversation(ctx, "bench", workflows.SignalAgentMessage,
					workflows.AgentMessageSignal{EventID: fmt.Sprint("IM", i), AgentName: "Ana", Text: "hi"}); err != nil {
					b.Fatal(err)
				}
				select {
				case at := <-started:
					lat = append(lat, at.Sub(sent))
				case <-time.After(30 * time.Second):
					b.Fatal("activity did not start")
				}
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
