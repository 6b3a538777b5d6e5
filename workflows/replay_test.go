package workflows

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
)

// TestReplayRecordedHistories replays every history in testdata/ against the current code. A
// change that would break running workflows (a different sequence of commands) fails here; put it
// behind workflow.GetVersion and keep the old history. Histories are recorded with
// TestRecordHistories in the worker package.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded histories in testdata/")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflow(Conversation)
			r.RegisterWorkflow(Case)
			r.RegisterWorkflow(Feed)
			r.RegisterWorkflow(Announcements)
			if err := r.ReplayWorkflowHistoryFromJSONFile(quietLogger(), f); err != nil {
				t.Fatalf("replay %s: %v", f, err)
			}
		})
	}
}
