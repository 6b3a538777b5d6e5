package transcript_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flexcord/flexcord/internal/blobstore"
	"github.com/flexcord/flexcord/internal/transcript"
)

const (
	user  = "1200000000000000001"
	other = "1200000000000000002"
	tid   = "C-7K3QX2"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.FixedZone("KST", 9*3600))

// entries makes entries first..last, one a minute, each saying its seq.
func entries(first, last int, text string) []transcript.Entry {
	var out []transcript.Entry
	for seq := first; seq <= last; seq++ {
		out = append(out, transcript.Entry{Seq: seq, At: t0.Add(time.Duration(seq) * time.Minute), Kind: transcript.KindMember, Name: "Mika", Text: fmt.Sprintf("%s %d", text, seq)})
	}
	return out
}

func seqs(es []transcript.Entry) []int {
	var out []int
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

func write(t *testing.T, s blobstore.Store, userID, transcriptID string, es []transcript.Entry) {
	t.Helper()
	if err := transcript.Write(context.Background(), s, transcript.Chunk{DiscordUserID: userID, TranscriptID: transcriptID, CaseID: transcriptID, Entries: es}); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, s blobstore.Store, userID, transcriptID string) []transcript.Entry {
	t.Helper()
	es, err := transcript.Read(context.Background(), s, userID, transcriptID)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func TestChunkKeysSortInTranscriptOrder(t *testing.T) {
	keys := []string{transcript.ChunkKey(user, tid, 100), transcript.ChunkKey(user, tid, 9), transcript.ChunkKey(user, tid, 10), transcript.ChunkKey(user, tid, 1)}
	slices.Sort(keys)
	want := []string{transcript.ChunkKey(user, tid, 1), transcript.ChunkKey(user, tid, 9), transcript.ChunkKey(user, tid, 10), transcript.ChunkKey(user, tid, 100)}
	if !slices.Equal(keys, want) {
		t.Errorf("sorted keys %q", keys)
	}
	if k := transcript.ChunkKey(user, tid, 42); k != "members/"+user+"/transcripts/"+tid+"/0000000042.json" || !strings.HasPrefix(k, blobstore.TranscriptPrefix(user, tid)) {
		t.Errorf("ChunkKey = %q", k)
	}
}

func TestReadMergesChunksInSeqOrder(t *testing.T) {
	s := blobstore.NewMemory()
	// Written out of order, and one chunk's entries out of order within it.
	write(t, s, user, tid, entries(21, 30, "c"))
	rev := entries(1, 10, "a")
	slices.Reverse(rev)
	write(t, s, user, tid, rev)
	write(t, s, user, tid, entries(11, 20, "b"))
	got := read(t, s, user, tid)
	if want := seqs(entries(1, 30, "")); !slices.Equal(seqs(got), want) {
		t.Fatalf("seqs %v, want %v", seqs(got), want)
	}
	if got[0].Text != "a 1" || got[29].Text != "c 30" {
		t.Errorf("first %q, last %q", got[0].Text, got[29].Text)
	}
	if keys, _ := s.List(context.Background(), blobstore.TranscriptPrefix(user, tid)); len(keys) != 3 || keys[0] != transcript.ChunkKey(user, tid, 1) {
		t.Errorf("chunks %q", keys)
	}
}

func TestWriteTwiceIsOneChunk(t *testing.T) {
	s := blobstore.NewMemory()
	write(t, s, user, tid, entries(1, 5, "a"))
	write(t, s, user, tid, entries(1, 5, "a"))
	keys, err := s.List(context.Background(), blobstore.TranscriptPrefix(user, tid))
	if err != nil || len(keys) != 1 {
		t.Fatalf("chunks %q, %v", keys, err)
	}
	if got := read(t, s, user, tid); !slices.Equal(seqs(got), []int{1, 2, 3, 4, 5}) {
		t.Errorf("seqs %v", seqs(got))
	}
}

// TestReadDropsDuplicateSeqs: a retried write cut differently overlaps an earlier chunk; each
// Seq is read once, from the chunk whose key sorts first.
func TestReadDropsDuplicateSeqs(t *testing.T) {
	s := blobstore.NewMemory()
	write(t, s, user, tid, entries(3, 8, "retry"))
	write(t, s, user, tid, entries(1, 5, "first"))
	got := read(t, s, user, tid)
	if !slices.Equal(seqs(got), []int{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("seqs %v", seqs(got))
	}
	for _, e := range got {
		want := "first"
		if e.Seq > 5 {
			want = "retry"
		}
		if !strings.HasPrefix(e.Text, want) {
			t.Errorf("seq %d from %q, want the %s chunk", e.Seq, e.Text, want)
		}
	}
}

func TestReadKeepsTranscriptsApart(t *testing.T) {
	s := blobstore.NewMemory()
	write(t, s, user, tid, entries(1, 2, "mine"))
	write(t, s, user, "C-7K3QX3", entries(1, 3, "my other case"))
	write(t, s, other, tid, entries(1, 4, "theirs"))
	// Other blobs near the chunks are not chunks.
	ctx := context.Background()
	_ = s.Put(ctx, blobstore.TranscriptPrefix(user, tid)+"notes.txt", []byte("x"), "text/plain")
	_ = s.Put(ctx, blobstore.TranscriptPrefix(user, tid)+"old/0000000001.json", []byte("x"), "application/json")
	_ = s.Put(ctx, blobstore.MediaKey(user, tid, "0000000001.json"), []byte("x"), "application/json")
	if got := read(t, s, user, tid); len(got) != 2 || got[0].Text != "mine 1" {
		t.Errorf("read %+v", got)
	}
	if got := read(t, s, user, "C-9ZZZZZ"); len(got) != 0 {
		t.Errorf("a transcript never written read as %+v", got)
	}
}

func TestReadReportsACorruptChunk(t *testing.T) {
	s := blobstore.NewMemory()
	write(t, s, user, tid, entries(1, 2, "a"))
	key := transcript.ChunkKey(user, tid, 3)
	_ = s.Put(context.Background(), key, []byte("{not json"), "application/json")
	if _, err := transcript.Read(context.Background(), s, user, tid); err == nil || !strings.Contains(err.Error(), key) {
		t.Errorf("err = %v, want one naming %s", err, key)
	}
}

func TestWriteRefusesBadChunks(t *testing.T) {
	s := blobstore.NewMemory()
	ctx := context.Background()
	for name, c := range map[string]transcript.Chunk{
		"no user":       {TranscriptID: tid, Entries: entries(1, 1, "a")},
		"no transcript": {DiscordUserID: user, Entries: entries(1, 1, "a")},
		"seq 0":         {DiscordUserID: user, TranscriptID: tid, Entries: entries(0, 1, "a")},
		"seq twice":     {DiscordUserID: user, TranscriptID: tid, Entries: append(entries(1, 2, "a"), entries(2, 2, "b")...)},
	} {
		if err := transcript.Write(ctx, s, c); err == nil {
			t.Errorf("%s: written", name)
		}
	}
	if err := transcript.Write(ctx, s, transcript.Chunk{DiscordUserID: user, TranscriptID: tid}); err != nil {
		t.Errorf("empty chunk: %v", err)
	}
	if keys, _ := s.List(ctx, ""); len(keys) != 0 {
		t.Errorf("stored %q", keys)
	}
}

// conversation is a transcript with an edit, a deletion, attachments, a form and hostile text.
func conversation() []transcript.Entry {
	return []transcript.Entry{
		{Seq: 1, At: t0, Kind: transcript.KindSystem, Text: "Case C-7K3QX2 opened"},
		{Seq: 2, At: t0.Add(time.Minute), Kind: transcript.KindMember, Name: "Mika", Ref: "m1", Text: "My order never arrived",
			Attachments: []transcript.Attachment{
				{Name: "receipt.png", ContentType: "image/png", Size: 12345, BlobKey: blobstore.MediaKey(user, tid, "receipt.png")},
				{Name: "clip.mp4", ContentType: "video/mp4", Size: 31 << 20, Note: "not passed on: larger than 25 MB"},
			}},
		{Seq: 3, At: t0.Add(2 * time.Minute), Kind: transcript.KindEdit, Name: "Mika", Ref: "m1", Text: "My order #123 never arrived"},
		{Seq: 4, At: t0.Add(3 * time.Minute), Kind: transcript.KindBot, Text: "Sorry to hear that."},
		{Seq: 5, At: t0.Add(4 * time.Minute), Kind: transcript.KindMember, Name: "Mika", Ref: "m2", Text: "my card number is 4111"},
		{Seq: 6, At: t0.Add(5 * time.Minute), Kind: transcript.KindDelete, Name: "Mika", Ref: "m2", Text: "my card number is 4111"},
		{Seq: 7, At: t0.Add(6 * time.Minute), Kind: transcript.KindAgent, Name: "Ana Souza", Text: "Let me check."},
		{Seq: 8, At: t0.Add(7 * time.Minute), Kind: transcript.KindForm, Name: "Mika", Text: "Bug report",
			Fields: []transcript.Field{{Label: "Title", Value: "Login loop"}, {Label: "Steps", Value: "Log in\nwait"}}},
	}
}

func render(t *testing.T, title string, es []transcript.Entry, format string) string {
	t.Helper()
	var b bytes.Buffer
	if err := transcript.Render(&b, title, es, format); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestMarkdownShowsEditsAndDeletionsAsTheyHappened(t *testing.T) {
	md := render(t, "Case C-7K3QX2", conversation(), transcript.FormatMarkdown)
	t.Logf("\n%s", md)
	for _, want := range []string{
		"# Case C-7K3QX2\n",
		"_2026-05-01 03:00:00 UTC · Case C-7K3QX2 opened_",
		"**Mika** · 2026-05-01 03:01:00 UTC  \nMy order never arrived\n",
		"- Attachment: receipt.png (image/png, 12.1 KB)\n",
		"- Attachment: clip.mp4 (video/mp4, 31.0 MB) — not passed on: larger than 25 MB\n",
		"**Mika** · 2026-05-01 03:02:00 UTC  \n(edited) My order #123 never arrived\n",
		"**Support bot** · 2026-05-01 03:03:00 UTC  \nSorry to hear that.\n",
		"**Mika** · 2026-05-01 03:05:00 UTC  \n(deleted a message)\n",
		"**Ana Souza** · 2026-05-01 03:06:00 UTC  \nLet me check.\n",
		"- **Title:** Login loop\n",
		"- **Steps:** Log in  \n  wait\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	// In the order they happened: the original, then its edit; the deleted message, then the
	// deletion (whose own text is not shown again).
	if i, j := strings.Index(md, "My order never arrived"), strings.Index(md, "(edited)"); i < 0 || j < i {
		t.Error("the edit is not after the original")
	}
	if strings.Count(md, "my card number is 4111") != 1 || strings.Index(md, "my card number") > strings.Index(md, "(deleted a message)") {
		t.Error("the deletion is not shown once, after the message")
	}
	if strings.Contains(md, "KST") || strings.Contains(md, "12:00:00") {
		t.Error("times are not in UTC")
	}
	if strings.Contains(md, "members/") {
		t.Error("the markdown shows a blob key")
	}
}

func TestMarkdownKeepsMemberTextFromMakingMarkup(t *testing.T) {
	md := render(t, "Case *x*", []transcript.Entry{
		{Seq: 1, At: t0, Kind: transcript.KindMember, Name: "**Admin**", Text: "# Heading\n<script>alert(1)</script>\n- item"},
	}, transcript.FormatMarkdown)
	for _, bad := range []string{"\n# Heading", "**Admin**", "\n- item", "# Case *x*"} {
		if strings.Contains(md, bad) {
			t.Errorf("markdown has %q:\n%s", bad, md)
		}
	}
	if regexp.MustCompile(`(^|[^\\])<`).MatchString(md) {
		t.Errorf("markdown has raw HTML:\n%s", md)
	}
	for _, want := range []string{`\# Heading`, `\<script>alert(1)\</script>`, `**\*\*Admin\*\***`, `\- item`} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestHTMLEscapesWhatMembersWrite(t *testing.T) {
	es := []transcript.Entry{
		{Seq: 1, At: t0, Kind: transcript.KindMember, Name: `<img src=x onerror=alert(1)>`, Text: `<script>alert("hi")</script><a href="https://evil.example">x</a>`,
			Attachments: []transcript.Attachment{{Name: `"><script>alert(2)</script>.png`, Note: `<b>too large</b>`}}},
		{Seq: 2, At: t0, Kind: `member" onclick="alert(3)`, Text: "odd kind"},
		{Seq: 3, At: t0, Kind: transcript.KindForm, Fields: []transcript.Field{{Label: "<i>Title</i>", Value: "</dd><script>x</script>"}}},
		{Seq: 4, At: t0, Kind: transcript.KindEdit, Text: "<style>body{display:none}</style>"},
	}
	page := render(t, `</title><script>alert(0)</script>`, es, transcript.FormatHTML)
	t.Logf("\n%s", page)
	// Every tag in the page is the template's own: known elements, known attributes.
	allowedTags := map[string]bool{"!doctype": true, "html": true, "head": true, "meta": true, "title": true, "style": true, "body": true,
		"h1": true, "div": true, "span": true, "time": true, "p": true, "ul": true, "li": true, "dl": true, "dt": true, "dd": true, "br": true}
	allowedAttrs := map[string]bool{"lang": true, "charset": true, "http-equiv": true, "content": true, "name": true, "class": true, "datetime": true, "html": true}
	tag := regexp.MustCompile(`<(/?)([!a-zA-Z][a-zA-Z0-9-]*)([^>]*)>`)
	attr := regexp.MustCompile(`([a-zA-Z-]+)(?:="[^"]*")?`)
	for _, m := range tag.FindAllStringSubmatch(page, -1) {
		if !allowedTags[strings.ToLower(m[2])] {
			t.Errorf("page has the tag %q", m[0])
		}
		for _, a := range attr.FindAllStringSubmatch(m[3], -1) {
			if !allowedAttrs[strings.ToLower(a[1])] {
				t.Errorf("page has the attribute %q in %q", a[1], m[0])
			}
		}
	}
	if strings.Count(page, "<style>") != 1 || strings.Count(page, "<title>") != 1 {
		t.Error("a second style or title element")
	}
	for _, want := range []string{"&lt;script&gt;alert(&#34;hi&#34;)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;", "&lt;b&gt;too large&lt;/b&gt;", "(edited)"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Self-contained: nothing is loaded from elsewhere.
	if regexp.MustCompile(`(?i)@import|url\(`).MatchString(page) {
		t.Error("page loads something")
	}
	if !strings.HasPrefix(page, "<!DOCTYPE html>") || !strings.Contains(page, `default-src 'none'`) {
		t.Error("not a page with a restrictive policy")
	}
}

func TestHTMLShowsTheConversation(t *testing.T) {
	page := render(t, "Case C-7K3QX2", conversation(), transcript.FormatHTML)
	for _, want := range []string{
		"<title>Case C-7K3QX2</title>", `<time datetime="2026-05-01T03:01:00Z">2026-05-01 03:01:00 UTC</time>`,
		`<span class="tag">(edited)</span> My order #123 never arrived`, `<span class="tag">(deleted a message)</span></p>`,
		"Attachment: clip.mp4 (video/mp4, 31.0 MB) — not passed on: larger than 25 MB", "<dt>Steps</dt><dd>Log in\nwait</dd>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Count(page, "my card number is 4111") != 1 {
		t.Error("the deleted text is shown again at its deletion")
	}
}

func TestJSONIsTheEntries(t *testing.T) {
	out := render(t, "ignored", conversation(), transcript.FormatJSON)
	var got []transcript.Entry
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	want := conversation()
	if len(got) != len(want) {
		t.Fatalf("%d entries", len(got))
	}
	for i := range want {
		if !got[i].At.Equal(want[i].At) || got[i].At.Location() != time.UTC || got[i].Text != want[i].Text || len(got[i].Attachments) != len(want[i].Attachments) {
			t.Errorf("entry %d: %+v", i, got[i])
		}
	}
	if !strings.Contains(out, `"at": "2026-05-01T03:00:00Z"`) {
		t.Error("times are not in UTC")
	}
	if out := render(t, "", nil, transcript.FormatJSON); strings.TrimSpace(out) != "[]" {
		t.Errorf("no entries: %q", out)
	}
}

func TestRenderUnknownFormat(t *testing.T) {
	err := transcript.Render(&bytes.Buffer{}, "", nil, "pdf")
	if err == nil || !strings.Contains(err.Error(), "md, html, json") {
		t.Errorf("err = %v", err)
	}
}
