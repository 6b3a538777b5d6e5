// Package transcript is the durable record of one support case: bot turns, member messages with
// their edits and deletions, agent messages, attachments, system events and form answers, in order.
//
// Workflows collect entries and an activity writes them to the blob store in chunks (one object per
// chunk, named by the sequence number of its first entry), so a transcript never sits in workflow
// history and writing a chunk again is harmless.
package transcript

import "time"

// Kinds of entry.
const (
	KindMember = "member" // a member's message
	KindBot    = "bot"    // the virtual agent's answer
	KindAgent  = "agent"  // a Flex agent's message
	KindSystem = "system" // case created, agent joined, wrap-up, rating…
	KindEdit   = "edit"   // a member edited an earlier message (Ref names it)
	KindDelete = "delete" // a member deleted an earlier message (Ref names it)
	KindForm   = "form"   // the answers of a /bug or /new_feature form
)

// Entry is one line of a transcript.
type Entry struct {
	// Seq orders the entries of one transcript, from 1.
	Seq  int       `json:"seq"`
	At   time.Time `json:"at"`
	Kind string    `json:"kind"`
	// Name is who wrote it, as shown (the member's display name, the agent's, "Support bot").
	Name string `json:"name,omitempty"`
	Text string `json:"text,omitempty"`
	// Ref is the id of the message an edit or deletion is about, or of the message itself.
	Ref         string       `json:"ref,omitempty"`
	Attachments []Attachment `json:"attachments,omitempty"`
	// Fields are a form's answers, in the form's order.
	Fields []Field `json:"fields,omitempty"`
}

// Attachment is a file in a transcript. BlobKey is the copy flexcord keeps; Note says why a file
// was not passed on (too large, a refused type).
type Attachment struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type,omitempty"`
	Size        int64  `json:"size,omitempty"`
	BlobKey     string `json:"blob_key,omitempty"`
	Note        string `json:"note,omitempty"`
}

// Field is one answer of a form.
type Field struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// Chunk is what one write stores: the entries Seq First..First+len-1 of a transcript.
type Chunk struct {
	DiscordUserID string  `json:"discord_user_id"`
	TranscriptID  string  `json:"transcript_id"`
	CaseID        string  `json:"case_id,omitempty"`
	Entries       []Entry `json:"entries"`
}
