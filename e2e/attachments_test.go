package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flexcord/flexcord/internal/blobstore"
	"github.com/flexcord/flexcord/internal/devstack"
	"github.com/flexcord/flexcord/internal/transcript"
	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/sandbox/twilioemu"
	"github.com/flexcord/flexcord/workflows"
)

func testPNG(n int) []byte {
	return append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{3}, n)...)
}

// An image and a text file go each way as real attachments, in order with the text around them;
// a file over the cap gets the member a clear message and the agent a note. Then the case's
// transcript holds the whole journey in order, and the member's *Send me the transcript* button
// brings it as a file.
func TestAttachmentsAndTranscript(t *testing.T) {
	blobs := blobstore.NewMemory()
	st := startStack(t, devstack.Options{Blobs: blobs, Conversation: workflows.ConversationOptions{
		Attachments: workflows.AttachmentPolicy{MaxBytes: 1 << 20},
	}})
	ctx := context.Background()
	member := devstack.SandboxMembers[0]
	dc, tw := st.Discord, st.Twilio

	// The bot stage, then a person.
	if _, err := dc.SendDM(member.ID, "The app crashes when I log in"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the bot's answer", func() bool { return len(botMessages(dc, member.ID)) >= 1 })
	if _, err := dc.SendDM(member.ID, "I want to talk to a human"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the case announcement", func() bool { _, ok := findBot(dc, member.ID, "created. Transferring you"); return ok })
	caseID := conversationStatus(t, st, member.ID).CaseID
	task := waitTask(t, tw, caseID)
	if _, err := tw.AcceptTask(task.SID, "Ana"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "Ana joined", func() bool { return countBot(dc, member.ID, "Ana joined") == 1 })

	// Member → agent: text, text with an image and a log file, text.
	shot, logFile := testPNG(4000), []byte("12:00:01 ERROR login: token expired\n")
	before, err := dc.SendDM(member.ID, "before the files")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dc.SendDMWithFiles(member.ID, "here are the files", discordemu.File{Name: "shot.png", Data: shot},
		discordemu.File{Name: "app.log", ContentType: "text/plain", Data: logFile}); err != nil {
		t.Fatal(err)
	}
	after, err := dc.SendDM(member.ID, "after the files")
	if err != nil {
		t.Fatal(err)
	}
	// Over the 1 MB cap of this stack: the member hears why, the agent gets a note.
	if _, err := dc.SendDMWithFiles(member.ID, "", discordemu.File{Name: "huge.png", Data: testPNG(2 << 20)}); err != nil {
		t.Fatal(err)
	}
	var flex []twilioemu.MessageView
	waitFor(t, 30*time.Second, "the member's files in Flex", func() bool {
		flex, _ = tw.ConversationMessages(task.ConversationSID)
		return len(flex) > 0 && strings.Contains(flex[len(flex)-1].Body, "huge.png")
	})
	var got []string
	for _, m := range flex {
		switch {
		case len(m.Media) == 1:
			_, data, err := tw.Media(m.Media[0].SID)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("file %s (%d bytes)", m.Media[0].Filename, len(data)))
		case m.Author != "flexcord-bot":
			got = append(got, m.Body)
		}
	}
	want := []string{"before the files", "here are the files", fmt.Sprintf("file shot.png (%d bytes)", len(shot)),
		fmt.Sprintf("file app.log (%d bytes)", len(logFile)), "after the files"}
	if len(got) < len(want)+1 || strings.Join(got[:len(want)], "|") != strings.Join(want, "|") {
		t.Fatalf("the agent saw, in order:\n%s\nwant first:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(got[len(want)], "huge.png") || !strings.Contains(got[len(want)], "huge.png (2 MB, image/png), not passed on: over the 1 MB limit") {
		t.Errorf("note to the agent = %q", got[len(want)])
	}
	waitFor(t, 20*time.Second, "the member hears huge.png was not passed on", func() bool {
		_, ok := findBot(dc, member.ID, "I couldn't pass on huge.png: it is larger than 1 MB.")
		return ok
	})

	// The member edits one message and deletes another: the agent hears of both.
	if _, err := dc.EditDM(member.ID, before.Message.ID, "before the files, edited"); err != nil {
		t.Fatal(err)
	}
	if err := dc.DeleteDM(member.ID, after.Message.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the agent hears of the edit and the deletion", func() bool {
		msgs, _ := tw.ConversationMessages(task.ConversationSID)
		var bodies []string
		for _, m := range msgs {
			bodies = append(bodies, m.Body)
		}
		all := strings.Join(bodies, "\n")
		return strings.Contains(all, "[flexcord] Mika edited a message: before the files, edited") &&
			strings.Contains(all, "[flexcord] Mika deleted a message they had sent")
	})

	// Agent → member: a text file and an image with the text, then more text.
	guide, diagram := []byte("1. Open settings\n2. Sign out everywhere\n"), testPNG(3000)
	if _, err := tw.SendAgentMedia(task.SID, "try these steps", twilioemu.MediaFile{Filename: "steps.txt", ContentType: "text/plain", Data: guide},
		twilioemu.MediaFile{Filename: "diagram.png", ContentType: "image/png", Data: diagram}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.SendAgentMessage(task.SID, "and tell me if it works"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the agent's files and text", func() bool { return countBot(dc, member.ID, "and tell me if it works") == 1 })
	var withFiles, textAfter int
	for i, r := range botMessages(dc, member.ID) {
		switch {
		case strings.HasSuffix(r.Message.Content, "try these steps"):
			withFiles = i
			if n := len(r.Message.Attachments); n != 2 {
				t.Fatalf("the agent's message reached the member with %d attachments", n)
			}
			for j, w := range [][]byte{guide, diagram} {
				a := r.Message.Attachments[j]
				if data, _, ok := dc.AttachmentData(a.ID); !ok || !bytes.Equal(data, w) {
					t.Errorf("attachment %s holds %d bytes, want %d", a.Filename, len(data), len(w))
				}
			}
		case strings.HasSuffix(r.Message.Content, "and tell me if it works"):
			textAfter = i
		}
	}
	if withFiles == 0 || textAfter <= withFiles {
		t.Errorf("the files came at %d and the text after them at %d", withFiles, textAfter)
	}

	// Wrap-up, rating, and the transcript.
	if _, err := tw.WrapUpTask(task.SID); err != nil {
		t.Fatal(err)
	}
	var offer discordemu.Record
	waitFor(t, 20*time.Second, "the transcript offer", func() bool {
		var ok bool
		offer, ok = findBot(dc, member.ID, "Would you like a copy of this chat?")
		return ok
	})
	rate, _ := findBot(dc, member.ID, "has been resolved")
	if _, err := dc.ClickButton(ctx, member.ID, discordemu.ButtonInput{MessageID: rate.Message.ID, CustomID: customIDs(rate)[3]}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the thanks", func() bool { _, ok := findBot(dc, member.ID, "Thanks for rating us 4/5"); return ok })
	if _, err := dc.ClickButton(ctx, member.ID, discordemu.ButtonInput{MessageID: offer.Message.ID, CustomID: customIDs(offer)[0]}); err != nil {
		t.Fatal(err)
	}
	var file discordemu.Record
	waitFor(t, 20*time.Second, "the transcript file", func() bool {
		var ok bool
		file, ok = findBot(dc, member.ID, "Here is the transcript of case "+caseID)
		return ok
	})
	if len(file.Message.Attachments) != 1 || file.Message.Attachments[0].Filename != "transcript-"+caseID+".md" {
		t.Fatalf("transcript DM = %+v", file.Message)
	}
	md, _, _ := dc.AttachmentData(file.Message.Attachments[0].ID)

	// The record: the whole journey, in order, each line once.
	var lines []transcript.Entry
	waitFor(t, 20*time.Second, "the whole transcript", func() bool {
		lines, _ = transcript.Read(ctx, blobs, member.ID, caseID)
		return len(lines) > 0 && lines[len(lines)-1].Text != "" && strings.Contains(lines[len(lines)-1].Text, "Thanks for rating")
	})
	var seq []string
	for i, e := range lines {
		if e.Seq != i+1 {
			t.Fatalf("line %d has seq %d", i+1, e.Seq)
		}
		s := e.Kind + ": " + e.Text
		for _, a := range e.Attachments {
			s += " [" + a.Name + "]"
			if a.BlobKey != "" {
				if _, _, err := blobs.Get(ctx, a.BlobKey); err != nil {
					t.Errorf("no copy of %s: %v", a.Name, err)
				}
			}
		}
		seq = append(seq, s)
	}
	steps := []string{"member: The app crashes when I log in", "bot: ", "member: I want to talk to a human", "system: Case " + caseID + " created",
		"system: Ana joined", "member: before the files", "member: here are the files [shot.png] [app.log]", "member: after the files",
		"member:  [huge.png]", "edit: before the files, edited", "delete: ", "agent: try these steps [steps.txt] [diagram.png]", "agent: and tell me if it works",
		"system: The agent wrapped up", "member: [Rated 4/5]", "bot: Thanks for rating"}
	at := 0
	for _, s := range steps {
		for at < len(seq) && !strings.HasPrefix(seq[at], s) {
			at++
		}
		if at == len(seq) {
			t.Fatalf("the transcript lacks %q in order:\n%s", s, strings.Join(seq, "\n"))
		}
		at++
	}
	for _, s := range []string{"The app crashes when I log in", "here are the files", "shot.png", "try these steps", "steps.txt"} {
		if !strings.Contains(string(md), s) {
			t.Errorf("the member's transcript file lacks %q:\n%s", s, md)
		}
	}
}
