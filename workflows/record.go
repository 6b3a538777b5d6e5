package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/internal/transcript"
)

// This file holds the durable transcript of a case (record behaviour): every line the workflow
// writes into its transcript also goes, with its attachments and form answers, into a record
// that an activity writes to the blob store in chunks. The record is kept per case, so nothing
// is written for a conversation that never becomes one: its lines wait in the first chunk,
// which gets the case id when the case opens.

var recordActs *activities.Records

const (
	// recordChunk is how many lines gather before they are written while a chat goes on.
	recordChunk = 20
	// recordUnassigned bounds the lines kept of a conversation that has no case yet (the bot
	// stage); the oldest go first.
	recordUnassigned = 200
	// recordGiveUp is how many failed writes in a row a conversation that has ended waits
	// through before it ends anyway, logging the lines it could not keep.
	recordGiveUp = 3
)

// RecordState is what the workflow holds of its record that is not written yet.
type RecordState struct {
	// ID is the transcript being written (the case id), "" while the conversation has no case.
	ID string `json:"id,omitempty"`
	// Next is the sequence number of the last line of the current transcript.
	Next int `json:"next,omitempty"`
	// Unsaved are the lines not written yet, oldest first; a chunk without a transcript id
	// waits for its case.
	Unsaved []transcript.Chunk `json:"unsaved,omitempty"`
	// Saving is how many lines of Unsaved[0] are being written.
	Saving int `json:"saving,omitempty"`
	// Failures counts the writes that failed in a row; LastError is the last one's error.
	Failures  int    `json:"failures,omitempty"`
	LastError string `json:"last_error,omitempty"`
	// Lost counts the lines given up after the blob store failed at the end.
	Lost int `json:"lost,omitempty"`
}

// add appends a line to the current transcript.
func (r *RecordState) add(userID string, e transcript.Entry) {
	r.Next++
	e.Seq = r.Next
	n := len(r.Unsaved)
	if n == 0 || r.Unsaved[n-1].TranscriptID != r.ID {
		r.Unsaved = append(r.Unsaved, transcript.Chunk{DiscordUserID: userID, TranscriptID: r.ID, CaseID: r.ID})
		n++
	}
	last := &r.Unsaved[n-1]
	last.Entries = append(last.Entries, e)
	if r.ID == "" && len(last.Entries) > recordUnassigned {
		last.Entries = append(last.Entries[:0:0], last.Entries[len(last.Entries)-recordUnassigned:]...)
	}
}

// assign makes caseID the transcript of the lines written so far without a case.
func (r *RecordState) assign(caseID string) {
	if r.ID == caseID {
		return
	}
	r.ID = caseID
	for i := range r.Unsaved {
		if r.Unsaved[i].TranscriptID == "" {
			r.Unsaved[i].TranscriptID, r.Unsaved[i].CaseID = caseID, caseID
		}
	}
}

// reset starts the record of a new conversation: the lines of one that never became a case
// are dropped, the others are still written.
func (r *RecordState) reset() {
	kept := r.Unsaved[:0:0]
	for _, ch := range r.Unsaved {
		if ch.TranscriptID != "" {
			kept = append(kept, ch)
		}
	}
	r.Unsaved, r.ID, r.Next = kept, "", 0
}

// pending counts the lines waiting to be written to a transcript.
func (r *RecordState) pending() int {
	n := 0
	for _, ch := range r.Unsaved {
		if ch.TranscriptID != "" {
			n += len(ch.Entries)
		}
	}
	return n
}

// due reports whether a write should start: there is a chunk of a case to write and either
// enough lines gathered or the caller wants everything written now (a stage changed, the run
// ends).
func (r *RecordState) due(now bool) bool {
	if r.Saving > 0 || len(r.Unsaved) == 0 || r.Unsaved[0].TranscriptID == "" {
		return false
	}
	return now || len(r.Unsaved) > 1 || len(r.Unsaved[0].Entries) >= recordChunk
}

// saved drops the lines a write took.
func (r *RecordState) saved() {
	first := &r.Unsaved[0]
	first.Entries = first.Entries[r.Saving:]
	if len(first.Entries) == 0 {
		r.Unsaved = r.Unsaved[1:]
	}
	r.Saving, r.Failures, r.LastError = 0, 0, ""
}

// giveUp drops the lines that could not be written, after the conversation ended.
func (r *RecordState) giveUp(ctx workflow.Context) {
	lost := r.pending()
	workflow.GetLogger(ctx).Error("transcript lines could not be written to the blob store", "lines", lost, "error", r.LastError)
	r.Lost += lost
	r.Unsaved = nil
}

// recordPolicy retries a write for about ten minutes before the workflow hears it failed; the
// lines stay in state and are written again at the next occasion.
var recordPolicy = workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 2 * time.Minute, MaximumAttempts: 10,
	},
}

// saveRecord starts writing the first chunk of r when due; done runs when the write ended.
// ending says the workflow is done but for its record: after recordGiveUp failed writes in a
// row it writes no more, and ends.
func saveRecord(ctx workflow.Context, sel workflow.Selector, r *RecordState, now, ending bool, done func()) bool {
	if !r.due(now) || (ending && r.Failures >= recordGiveUp) {
		return false
	}
	chunk := r.Unsaved[0]
	chunk.Entries = append([]transcript.Entry(nil), chunk.Entries...)
	r.Saving = len(chunk.Entries)
	o := recordPolicy
	o.Summary = "Write transcript " + chunk.TranscriptID
	f := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, o), recordActs.SaveTranscript, activities.SaveTranscriptInput{Chunk: chunk})
	sel.AddFuture(f, func(f workflow.Future) {
		if err := f.Get(ctx, nil); err != nil {
			r.Saving, r.Failures, r.LastError = 0, r.Failures+1, rootMessage(err)
			workflow.GetLogger(ctx).Warn("write transcript", "transcript", chunk.TranscriptID, "error", r.LastError)
		} else {
			r.saved()
		}
		done()
	})
	return true
}

// saveRecord writes the conversation's record when due: every 20 lines while a chat is live,
// at once in the other stages (the hand-over, the wrap-up, the end) and before the run continues
// as new.
func (c *conversation) saveRecord(ctx workflow.Context) {
	if !c.record() {
		return
	}
	now := c.s.Stage != StageLive || c.shouldContinueAsNew(ctx)
	saveRecord(ctx, c.sel, &c.s.Record, now, c.s.Stage == StageClosed, func() { c.publish(ctx) })
}

// botPhaseLines and botPhaseLineChars bound what a hand-over carries of the bot stage.
const (
	botPhaseLines     = 100
	botPhaseLineChars = 1000
)

// botPhase returns the lines of transcript id not written yet, for the agent: at the first
// hand-over of a case, the whole bot stage (nothing of a conversation is written before its
// case exists).
func (r *RecordState) botPhase(id string) []transcript.Entry {
	var out []transcript.Entry
	for _, ch := range r.Unsaved {
		if ch.TranscriptID != id {
			continue
		}
		for _, e := range ch.Entries {
			e.Text = truncate(e.Text, botPhaseLineChars)
			out = append(out, e)
		}
	}
	if len(out) > botPhaseLines {
		out = out[len(out)-botPhaseLines:]
	}
	return out
}

// onUserMessageChanged records a member's edit or deletion of a DM where it happened, and tells
// the agent of a chat under way.
func (c *conversation) onUserMessageChanged(ctx workflow.Context, sig UserMessageChangedSignal) {
	if !c.fresh(sig.EventID) {
		return
	}
	c.learnMember(sig.Member, "")
	e := transcript.Entry{At: workflow.Now(ctx), Kind: transcript.KindEdit, Name: c.s.Member.Name(), Ref: sig.MessageID, Text: sig.Text}
	tail, note := "(edited) "+sig.Text, c.s.Member.Name()+" edited a message: "+sig.Text
	if sig.Deleted {
		e.Kind, e.Text = transcript.KindDelete, ""
		tail, note = "(deleted a message)", c.s.Member.Name()+" deleted a message they had sent"
	}
	c.s.Record.add(c.s.Member.UserID, e)
	c.transcriptTail(ctx, "member", c.s.Member.Name(), tail)
	if c.s.Stage == StageQueued || c.s.Stage == StageLive {
		c.enqueue(ctx, Destination{DestFlex, c.s.CaseID}, "member edit", activities.Message{Content: "[flexcord] " + note}, nil)
	}
}
