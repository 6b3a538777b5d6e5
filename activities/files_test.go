package activities_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/internal/blobstore"
	"github.com/flexcord/flexcord/internal/discordsession"
	"github.com/flexcord/flexcord/internal/transcript"
	"github.com/flexcord/flexcord/internal/twilioclient"
	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/sandbox/twilioemu"
)

const memberID = "2000000000000000009"

// clock is a settable clock for the Discord emulator, which ages its CDN links by it.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fileWorld is both emulators and the Discord and Flex activities sharing one Files, as a worker
// has them.
type fileWorld struct {
	discord *discordemu.Server
	twilio  *twilioemu.Server
	clock   *clock
	store   *blobstore.Memory
	d       *activities.Discord
	f       *activities.Flex
	files   *activities.Files
}

func newFileWorld(t *testing.T) *fileWorld {
	t.Helper()
	w := &fileWorld{clock: &clock{now: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)}, store: blobstore.NewMemory()}
	w.discord = discordemu.NewTest(t, discordemu.Options{Clock: w.clock.Now, Members: []discordemu.Member{{ID: memberID, Username: "mika"}}})
	var rc *twilioclient.RestClient
	w.twilio, w.f, rc = startFlex(t)
	s, err := discordsession.New(w.discord.Token(), w.discord.Transport())
	if err != nil {
		t.Fatal(err)
	}
	w.d = activities.NewDiscord(s, slog.New(slog.DiscardHandler))
	w.files = &activities.Files{Store: w.store, CDN: s.Client, Media: rc.Media}
	w.d.Files, w.f.Files = w.files, w.files
	return w
}

func png(n int) []byte {
	return append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, n)...)
}

// A member's screenshot and log file reach the agent as Twilio media, after the text, in order;
// flexcord keeps a copy, so a retry after Discord's link expired still has the file. A file over
// the cap reaches the agent as a note.
func TestMemberFilesReachFlexAsMedia(t *testing.T) {
	w := newFileWorld(t)
	ctx := context.Background()
	shot, log := png(2000), []byte("12:00 error: token expired\n")
	rec, err := w.discord.SendDMWithFiles(memberID, "here you go", discordemu.File{Name: "shot.png", Data: shot},
		discordemu.File{Name: "app.log", ContentType: "text/plain", Data: log})
	if err != nil {
		t.Fatal(err)
	}
	var files []activities.File
	for _, a := range rec.Message.Attachments {
		files = append(files, activities.File{Name: a.Filename, ContentType: a.ContentType, Size: int64(a.Size), URL: a.URL,
			BlobKey: blobstore.MediaKey(memberID, "k1", a.ID+"-"+a.Filename)})
	}
	fi, err := w.f.CreateFlexInteraction(ctx, handOverInput())
	if err != nil {
		t.Fatal(err)
	}
	res, err := w.f.PostFlexMessage(ctx, activities.PostFlexMessageInput{
		ConversationSID: fi.ConversationSID, Identity: fi.Identity, Body: "here you go", Files: files, DeliveryKey: "k1-3",
	})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := w.twilio.ConversationMessages(fi.ConversationSID)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 || msgs[0].Body != "here you go" || len(msgs[1].Media) != 1 || len(msgs[2].Media) != 1 {
		t.Fatalf("messages = %+v", msgs)
	}
	if len(res.FileIndexes) != 2 || res.FileIndexes[0] != msgs[1].Index || res.FileIndexes[1] != msgs[2].Index {
		t.Errorf("result %+v: want the media messages' indexes %d, %d", res, msgs[1].Index, msgs[2].Index)
	}
	for i, want := range [][]byte{shot, log} {
		mv, data, err := w.twilio.Media(msgs[i+1].Media[0].SID)
		if err != nil || !bytes.Equal(data, want) || mv.Filename != files[i].Name {
			t.Errorf("media %d = %+v (%d bytes, %v), want %s", i, mv, len(data), err, files[i].Name)
		}
		if kept, _, err := w.store.Get(ctx, files[i].BlobKey); err != nil || !bytes.Equal(kept, want) {
			t.Errorf("copy of %s: %d bytes, %v", files[i].Name, len(kept), err)
		}
	}

	// Two days later Discord's link has expired: the copy is what gets posted.
	w.clock.Add(48 * time.Hour)
	if _, err := w.f.PostFlexMessage(ctx, activities.PostFlexMessageInput{
		ConversationSID: fi.ConversationSID, Identity: fi.Identity, Files: files[:1], DeliveryKey: "k1-4",
	}); err != nil {
		t.Fatal(err)
	}
	// Without a copy the expired link is a note, and so is a file over the cap.
	w.files.MaxBytes = 1000
	if _, err := w.f.PostFlexMessage(ctx, activities.PostFlexMessageInput{
		ConversationSID: fi.ConversationSID, Identity: fi.Identity, DeliveryKey: "k1-5",
		Files: []activities.File{{Name: "old.png", URL: files[0].URL, BlobKey: "members/" + memberID + "/media/k1/none"}, {Name: "big.png", Size: 5000, URL: files[0].URL}},
	}); err != nil {
		t.Fatal(err)
	}
	msgs, _ = w.twilio.ConversationMessages(fi.ConversationSID)
	if len(msgs) != 6 || len(msgs[3].Media) != 1 {
		t.Fatalf("messages after the link expired = %+v", msgs)
	}
	if _, data, _ := w.twilio.Media(msgs[3].Media[0].SID); !bytes.Equal(data, shot) {
		t.Errorf("the copy posted after the link expired has %d bytes", len(data))
	}
	if !strings.Contains(msgs[4].Body, "old.png could not be passed on: its link has expired") ||
		!strings.Contains(msgs[5].Body, "big.png could not be passed on: it is larger than 1000 B") {
		t.Errorf("notes = %q, %q", msgs[4].Body, msgs[5].Body)
	}
}

// An agent's file reaches the member as a Discord upload with the message; one larger than
// Discord takes becomes a note.
func TestAgentFilesReachTheMemberAsUploads(t *testing.T) {
	w := newFileWorld(t)
	ctx := context.Background()
	doc := []byte("%PDF-1.4 steps to reset your password")
	mv, err := w.twilio.UploadMedia(twilioemu.MediaFile{Filename: "steps.pdf", ContentType: "application/pdf", Data: doc})
	if err != nil {
		t.Fatal(err)
	}
	file := activities.File{Name: "steps.pdf", ContentType: "application/pdf", Size: int64(len(doc)), MediaSID: mv.SID,
		ServiceSID: w.twilio.ChatServiceSID(), BlobKey: blobstore.MediaKey(memberID, "k1", mv.SID+"-steps.pdf")}
	if _, err := w.d.SendDirectMessage(ctx, activities.SendDirectMessageInput{UserID: memberID, Nonce: "k1-9",
		Message: activities.Message{Content: "**Ana:** here are the steps", Files: []activities.File{file}}}); err != nil {
		t.Fatal(err)
	}
	dms := w.discord.UserMessages(memberID)
	if len(dms) != 1 || dms[0].Message.Content != "**Ana:** here are the steps" || len(dms[0].Message.Attachments) != 1 {
		t.Fatalf("DMs = %+v", dms)
	}
	a := dms[0].Message.Attachments[0]
	if data, _, ok := w.discord.AttachmentData(a.ID); !ok || !bytes.Equal(data, doc) || a.Filename != "steps.pdf" {
		t.Errorf("attachment %+v holds %d bytes", a, len(data))
	}
	if kept, _, err := w.store.Get(ctx, file.BlobKey); err != nil || !bytes.Equal(kept, doc) {
		t.Errorf("copy: %d bytes, %v", len(kept), err)
	}

	// Over Discord's 10 MiB per file: the member reads a note instead.
	big, err := w.twilio.UploadMedia(twilioemu.MediaFile{Filename: "video.png", ContentType: "image/png", Data: png(11 << 20)})
	if err != nil {
		t.Fatal(err)
	}
	w.files.MaxBytes = 20 << 20
	if _, err := w.d.SendDirectMessage(ctx, activities.SendDirectMessageInput{UserID: memberID, Nonce: "k1-10",
		Message: activities.Message{Content: "**Ana:** a video", Files: []activities.File{{Name: "video.png", MediaSID: big.SID, ServiceSID: w.twilio.ChatServiceSID()}}}}); err != nil {
		t.Fatal(err)
	}
	dms = w.discord.UserMessages(memberID)
	if last := dms[len(dms)-1].Message; len(last.Attachments) != 0 || !strings.Contains(last.Content, "video.png could not be passed on: Discord does not take a file that large") {
		t.Errorf("last DM = %+v", last)
	}
}

// A member asking for their transcript gets it as a Markdown file by DM; a case without one is
// an error that says so.
func TestSendTranscript(t *testing.T) {
	w := newFileWorld(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	if err := transcript.Write(ctx, w.store, transcript.Chunk{DiscordUserID: memberID, TranscriptID: "C-7K3QX2", CaseID: "C-7K3QX2", Entries: []transcript.Entry{
		{Seq: 1, At: at, Kind: transcript.KindMember, Name: "Mika", Text: "I forgot my password"},
		{Seq: 2, At: at, Kind: transcript.KindAgent, Name: "Ana", Text: "Reset it from the login page."},
	}}); err != nil {
		t.Fatal(err)
	}
	r := &activities.Records{Store: w.store, Discord: w.d}
	res, err := r.SendTranscript(ctx, activities.SendTranscriptInput{UserID: memberID, CaseID: "C-7K3QX2", Content: "Here is the transcript of case C-7K3QX2.", Nonce: "tr1"})
	if err != nil {
		t.Fatal(err)
	}
	dms := w.discord.UserMessages(memberID)
	if len(dms) != 1 || res.MessageID != dms[0].Message.ID || res.Lines != 2 || len(dms[0].Message.Attachments) != 1 {
		t.Fatalf("result %+v, DMs %+v", res, dms)
	}
	a := dms[0].Message.Attachments[0]
	data, _, _ := w.discord.AttachmentData(a.ID)
	if a.Filename != "transcript-C-7K3QX2.md" || !strings.Contains(string(data), "I forgot my password") || !strings.Contains(string(data), "Reset it from the login page.") {
		t.Errorf("file %s:\n%s", a.Filename, data)
	}
	// Another member's case, or one never written: nothing is sent.
	_, err = r.SendTranscript(ctx, activities.SendTranscriptInput{UserID: "2000000000000000010", CaseID: "C-7K3QX2", Nonce: "tr2"})
	if err == nil || asAppError(t, err).Type() != activities.ErrTranscriptNotFound {
		t.Errorf("another member's transcript: %v", err)
	}
}
