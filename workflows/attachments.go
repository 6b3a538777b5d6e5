package workflows

import (
	"path"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/internal/blobstore"
	"github.com/flexcord/flexcord/internal/transcript"
)

// This file holds what a conversation does with files (record behaviour): which are passed on,
// where flexcord keeps its copy, and what each side hears of one that is not passed on.

// AttachmentPolicy says which files are passed on. A file over MaxBytes, or of a type that
// matches none of Types, is not: the sender hears why, the other side gets a note.
type AttachmentPolicy struct {
	// MaxBytes caps one file (default 20 MB).
	MaxBytes int64 `json:"max_bytes,omitempty"`
	// Types are the content types taken, "image/*" style (default: images, text and logs,
	// PDF, JSON).
	Types []string `json:"types,omitempty"`
}

// DefaultAttachmentTypes are the content types passed on by default.
var DefaultAttachmentTypes = []string{"image/*", "text/*", "application/pdf", "application/json"}

// botFilesMax bounds the files kept for the agent before a hand-over.
const botFilesMax = 10

func (p AttachmentPolicy) withDefaults() AttachmentPolicy {
	if p.MaxBytes <= 0 {
		p.MaxBytes = activities.DefaultMaxFileBytes
	}
	if len(p.Types) == 0 {
		p.Types = DefaultAttachmentTypes
	}
	return p
}

// refusal says why a file is not passed on ("" when it is), in the words of i18n key
// attachment.too_large or attachment.type.
func (p AttachmentPolicy) refusal(a Attachment) (key string, arg string) {
	if a.Size > p.MaxBytes {
		return "attachment.too_large", activities.FormatBytes(p.MaxBytes)
	}
	ct := strings.ToLower(strings.TrimSpace(strings.SplitN(a.ContentType, ";", 2)[0]))
	if ct == "" {
		ct = "application/octet-stream"
	}
	for _, t := range p.Types {
		if ok, _ := path.Match(strings.ToLower(t), ct); ok {
			return "", ""
		}
	}
	return "attachment.type", ct
}

// refusedFile is a file not passed on, and why (an i18n key and its argument).
type refusedFile struct {
	name, contentType string
	size              int64
	key, arg          string
}

// reason is why the file was not passed on, in the member's language.
func (c *conversation) reason(r refusedFile) string {
	return c.t(r.key, "limit", r.arg, "type", r.arg)
}

// describe names the file for an agent: "huge.png (2 MB, image/png)".
func (r refusedFile) describe() string {
	return r.name + " (" + activities.FormatBytes(r.size) + ", " + orDefault(r.contentType, "unknown type") + ")"
}

// forAgent says why, in English, the language of flexcord's notes to agents.
func (r refusedFile) forAgent() string { return refusedFor(r.key, r.arg) }

// files sorts what arrived into the files passed on, with the key of flexcord's copy, and those
// that are not; it also returns them all as the transcript records them.
func (c *conversation) files(atts []Attachment) (pass []activities.File, refused []refusedFile, rec []transcript.Attachment) {
	for _, a := range atts {
		name := orDefault(strings.TrimSpace(a.Name), "file")
		if key, arg := c.opts.Attachments.refusal(a); key != "" {
			refused = append(refused, refusedFile{name: name, contentType: a.ContentType, size: a.Size, key: key, arg: arg})
			rec = append(rec, transcript.Attachment{Name: name, ContentType: a.ContentType, Size: a.Size, Note: "not passed on: " + refusedFor(key, arg)})
			continue
		}
		// The copy is named by the conversation and the file, not the case: a file of the bot
		// stage keeps its name when the case is handed over.
		blob := blobstore.MediaKey(c.s.Member.UserID, c.s.Ledger.KeyPrefix, orDefault(a.ID, a.MediaSID)+"-"+name)
		pass = append(pass, activities.File{Name: name, ContentType: a.ContentType, Size: a.Size, URL: a.URL,
			MediaSID: a.MediaSID, ServiceSID: a.ServiceSID, BlobKey: blob})
		rec = append(rec, transcript.Attachment{Name: name, ContentType: a.ContentType, Size: a.Size, BlobKey: blob})
	}
	return pass, refused, rec
}

// refusedFor is the reason an agent reads (in English, as the other notes to agents).
func refusedFor(key, arg string) string {
	if key == "attachment.too_large" {
		return "over the " + arg + " limit"
	}
	return "files of type " + arg + " are not accepted"
}

// transcriptFiles adds a transcript line that carries files.
func (c *conversation) transcriptFiles(ctx workflow.Context, from, name, text string, rec []transcript.Attachment) {
	c.s.Record.add(c.s.Member.UserID, transcript.Entry{At: workflow.Now(ctx), Kind: from, Name: name, Text: text, Attachments: rec})
	if text == "" {
		text = "[" + attachmentNames(rec) + "]"
	}
	c.transcriptTail(ctx, from, name, text)
}

func attachmentNames(rec []transcript.Attachment) string {
	names := make([]string, len(rec))
	for i, a := range rec {
		names[i] = a.Name
	}
	return strings.Join(names, ", ")
}

// keepBotFiles keeps the files of the bot stage for the agent; the oldest go past botFilesMax.
func (c *conversation) keepBotFiles(files []activities.File) {
	c.s.BotFiles = append(c.s.BotFiles, files...)
	if n := len(c.s.BotFiles); n > botFilesMax {
		c.s.BotFiles = append(c.s.BotFiles[:0:0], c.s.BotFiles[n-botFilesMax:]...)
	}
}

// handOverBotFiles queues the files of the bot stage for the agent, once the case exists.
func (c *conversation) handOverBotFiles(ctx workflow.Context) {
	if len(c.s.BotFiles) == 0 {
		return
	}
	files := c.s.BotFiles
	c.s.BotFiles = nil
	c.enqueue(ctx, Destination{DestFlex, c.s.CaseID}, "files from before the hand-over", activities.Message{Files: files}, nil)
}

// onMemberFiles is a member's message with files (record behaviour): the files go where the
// text would, those not passed on are explained to the member and noted for the agent.
func (c *conversation) onMemberFiles(ctx workflow.Context, sig UserMessageSignal, text string) {
	c.unblockMember(ctx)
	pass, refused, rec := c.files(sig.Files)
	if c.s.Stage == StageResolved && !isNewQuestion(text, sig.WantsHuman) {
		// A word of thanks (or a screenshot) after the wrap-up: kept in the transcript.
		c.transcriptFiles(ctx, "member", c.s.Member.Name(), text, rec)
		return
	}
	if c.s.Stage == StageResolved || c.s.Stage == StageClosed {
		c.restart(ctx) // the copies' keys come from the conversation, which a restart keeps
	}
	c.s.LastActivity = workflow.Now(ctx)
	c.transcriptFiles(ctx, "member", c.s.Member.Name(), text, rec)
	content := text
	for _, r := range refused {
		c.sayToMember(ctx, "attachment refused", activities.Message{Content: c.t("attachment.refused", "name", r.name, "reason", c.reason(r))})
		content = strings.TrimSpace(content + "\n[flexcord] " + c.s.Member.Name() + " attached " + r.describe() + ", not passed on: " + r.forAgent())
	}
	c.memberSays(ctx, sig, text, activities.Message{Content: content, Files: pass})
}

// fetchedFiles are the files of an agent's message fetched from Flex, as a signal carries them.
func fetchedFiles(files []activities.File) []Attachment {
	var out []Attachment
	for _, f := range files {
		out = append(out, Attachment{ID: f.MediaSID, Name: f.Name, ContentType: f.ContentType, Size: f.Size, MediaSID: f.MediaSID, ServiceSID: f.ServiceSID})
	}
	return out
}
