package activities

import (
	"bytes"
	"context"
	"fmt"

	"github.com/bwmarrin/discordgo"

	"go.temporal.io/sdk/temporal"

	"github.com/flexcord/flexcord/internal/blobstore"
	"github.com/flexcord/flexcord/internal/transcript"
)

// Records writes the durable transcripts of cases to the blob store, and sends members theirs
// (through Discord, when set).
type Records struct {
	Store   blobstore.Store
	Discord *Discord
}

// SaveTranscriptInput is the input of Records.SaveTranscript.
type SaveTranscriptInput struct {
	Chunk transcript.Chunk `json:"chunk"`
}

// SaveTranscript writes one chunk of a transcript. Writing the same chunk again is harmless.
func (r *Records) SaveTranscript(ctx context.Context, in SaveTranscriptInput) error {
	if r == nil || r.Store == nil {
		return notConfigured("the blob store")
	}
	if in.Chunk.DiscordUserID == "" || in.Chunk.TranscriptID == "" || len(in.Chunk.Entries) == 0 {
		return temporal.NewNonRetryableApplicationError("a transcript chunk needs a member, a transcript id and lines", "InvalidInput", nil)
	}
	return transcript.Write(ctx, r.Store, in.Chunk)
}

// SendTranscriptInput is the input of Records.SendTranscript.
type SendTranscriptInput struct {
	UserID string `json:"user_id"`
	CaseID string `json:"case_id"`
	// Content is the text of the DM the file comes with, in the member's language.
	Content string `json:"content"`
	// Nonce makes a retried send return the first attempt's message.
	Nonce string `json:"nonce"`
}

// SendTranscriptResult is the DM that carried the transcript.
type SendTranscriptResult struct {
	ChannelID string `json:"channel_id"`
	MessageID string `json:"message_id"`
	Lines     int    `json:"lines"`
}

// ErrTranscriptNotFound: the member has no transcript of that case (none was written, or it
// was erased).
const ErrTranscriptNotFound = "TranscriptNotFound"

// SendTranscript sends a member the transcript of one of their cases as a Markdown file, by DM.
// It reads only under the member's own prefix of the blob store, so nobody can fetch another
// member's transcript.
func (r *Records) SendTranscript(ctx context.Context, in SendTranscriptInput) (SendTranscriptResult, error) {
	if r == nil || r.Store == nil {
		return SendTranscriptResult{}, notConfigured("the blob store")
	}
	if r.Discord == nil || r.Discord.s == nil {
		// Retryable: a worker that has Discord may take the next attempt.
		return SendTranscriptResult{}, temporal.NewApplicationError("Discord is not configured on this worker", ErrNotConfigured)
	}
	op := "send the transcript of case " + in.CaseID + " to member " + in.UserID
	entries, err := transcript.Read(ctx, r.Store, in.UserID, in.CaseID)
	if err != nil {
		return SendTranscriptResult{}, fmt.Errorf("%s: read: %w", op, err)
	}
	if len(entries) == 0 {
		return SendTranscriptResult{}, temporal.NewNonRetryableApplicationError(op+": no transcript", ErrTranscriptNotFound, nil)
	}
	var file bytes.Buffer
	if err := transcript.Render(&file, "Case "+in.CaseID, entries, "md"); err != nil {
		return SendTranscriptResult{}, temporal.NewNonRetryableApplicationError(op+": render: "+err.Error(), "InvalidInput", nil)
	}
	channelID, _, err := r.Discord.dmChannel(ctx, in.UserID)
	if err != nil {
		return SendTranscriptResult{}, r.Discord.classify(op, err)
	}
	body := &messageBody{
		Content: in.Content, Nonce: in.Nonce, EnforceNonce: in.Nonce != "",
		AllowedMentions: allowedMentions{Parse: []string{}},
	}
	id, err := r.Discord.sendWithFiles(ctx, channelID, body, []*discordgo.File{{
		Name: "transcript-" + in.CaseID + ".md", ContentType: "text/markdown; charset=utf-8", Reader: &file,
	}})
	if err != nil {
		return SendTranscriptResult{}, r.Discord.classify(op, err)
	}
	return SendTranscriptResult{ChannelID: channelID, MessageID: id, Lines: len(entries)}, nil
}
