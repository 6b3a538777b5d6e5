package web_test

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/sandbox/twilioemu"
	"github.com/flexcord/flexcord/sandbox/web/webtest"
)

// testPNG returns a w×h PNG.
func testPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := range w {
		for y := range h {
			img.Set(x, y, color.RGBA{R: 0x58, G: 0x65, B: 0xf2, A: 0xff})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fetch GETs url (through rt when not nil) and returns the status and body.
func fetch(t *testing.T, rt http.RoundTripper, url string) (int, []byte) {
	t.Helper()
	c := &http.Client{Transport: rt, Timeout: 10 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b
}

// TestAttachmentControlAPIAsThePageUsesIt sends files the way sandbox.js
// does (the member's DM as a form with content and files[n]; the agent's
// files uploaded to /_emu/twilio/media, then named in the message) and
// checks the answers carry what the page reads to show them.
func TestAttachmentControlAPIAsThePageUsesIt(t *testing.T) {
	js := pageJS(t)
	sb := startSandbox(t)
	pic := testPNG(t, 6, 4)

	// The member's DM with a picture, as FormData sends it.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("content", "my order")
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="files[0]"; filename="box photo.png"`)
	h.Set("Content-Type", "image/png")
	part, _ := mw.CreatePart(h)
	_, _ = part.Write(pic)
	_ = mw.Close()
	res, err := http.Post(sb.URL+"/_emu/discord/members/"+testMemberID+"/dm", mw.FormDataContentType(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST dm with a file = %d", res.StatusCode)
	}
	recs := call(t, http.MethodGet, sb.URL+"/_emu/discord/members/"+testMemberID+"/messages", nil, http.StatusOK)
	requireFields(t, js, "GET /members/{id}/messages", map[string]any{"records": recs},
		"records[].message.channel_id", "records[].message.attachments[].id", "records[].message.attachments[].filename",
		"records[].message.attachments[].content_type", "records[].message.attachments[].size")
	rec := recs.([]any)[0]
	att := rec.(map[string]any)["message"].(map[string]any)["attachments"].([]any)[0]
	if str(att, "filename") != "box_photo.png" || str(att, "content_type") != "image/png" {
		t.Fatalf("attachment = %v", att)
	}
	// The page's URL for it (attachmentURL in sandbox.js), on its own server.
	local := sb.URL + "/_emu/discord/attachments/" + url.PathEscape(str(rec, "message", "channel_id")) + "/" + str(att, "id") + "/" + url.PathEscape(str(att, "filename"))
	if status, body := fetch(t, nil, local); status != http.StatusOK || !bytes.Equal(body, pic) {
		t.Fatalf("GET %s = %d", local, status)
	}
	// The bot's copy is a signed CDN URL, fetched through the transport.
	if status, body := fetch(t, sb.discord.Transport(), str(att, "url")); status != http.StatusOK || !bytes.Equal(body, pic) {
		t.Fatalf("GET %s = %d", str(att, "url"), status)
	}

	// The agent's reply with a file.
	if err := sb.bot.handOver(testMemberID); err != nil {
		t.Fatal(err)
	}
	task := sb.twilio.Tasks()[0]
	call(t, http.MethodPost, sb.URL+"/_emu/twilio/tasks/"+task.SID+"/accept", map[string]any{"agent": "Ana"}, http.StatusOK)
	req, _ := http.NewRequest(http.MethodPost, sb.URL+"/_emu/twilio/media?filename="+url.QueryEscape("steps.png"), bytes.NewReader(pic))
	req.Header.Set("Content-Type", "image/png")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	up := map[string]any{}
	if err := decodeJSONBody(res, &up); err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("POST /media = %d %v", res.StatusCode, err)
	}
	requireFields(t, js, "POST /media", up, "sid")
	call(t, http.MethodPost, sb.URL+"/_emu/twilio/tasks/"+task.SID+"/messages", map[string]any{"body": "", "media_sids": []string{str(up, "sid")}}, http.StatusCreated)
	msgs := call(t, http.MethodGet, sb.URL+"/_emu/twilio/conversations/"+task.ConversationSID+"/messages", nil, http.StatusOK)
	all := msgs.(map[string]any)["messages"].([]any)
	last := map[string]any{"messages": all[len(all)-1:]}
	requireFields(t, js, "GET /conversations/{sid}/messages", last,
		"messages[].media[].sid", "messages[].media[].filename", "messages[].media[].content_type",
		"messages[].media[].size", "messages[].media[].url")
	media := all[len(all)-1].(map[string]any)["media"].([]any)[0]
	if status, body := fetch(t, nil, sb.URL+str(media, "url")); status != http.StatusOK || !bytes.Equal(body, pic) {
		t.Fatalf("GET %s = %d", str(media, "url"), status)
	}
}

func decodeJSONBody(res *http.Response, v any) error {
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// TestPageAttachments attaches a picture and a text file on the member's
// side and a picture on the agent's side, and checks that the page sends
// them to the emulators and shows pictures inline and other files as
// download links.
func TestPageAttachments(t *testing.T) {
	ctx := webtest.Start(t)
	sb := startSandbox(t)
	p := webtest.NewTab(t, ctx)
	dir := t.TempDir()
	pic, notes, steps := testPNG(t, 40, 30), []byte("order 4411\n"), testPNG(t, 24, 16)
	picPath, notesPath, stepsPath := filepath.Join(dir, "broken blender.png"), filepath.Join(dir, "order.txt"), filepath.Join(dir, "steps.png")
	for path, data := range map[string][]byte{picPath: pic, notesPath: notes, stepsPath: steps} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	p.Do("open the sandbox", chromedp.Navigate(sb.URL+"/sandbox"))
	p.WaitFor("the page is ready", `document.body.dataset.ready === "true"`)
	p.WaitFor("both event streams are live",
		`document.querySelector('[data-testid="conn-discord"]').dataset.state === "live" && document.querySelector('[data-testid="conn-twilio"]').dataset.state === "live"`)

	// The member attaches a picture and a text file to a DM.
	p.Do("pick two files", chromedp.SetUploadFiles(chromedp.CSS(`[data-testid="member-files"]`), []string{picPath, notesPath}))
	p.WaitFor("both files wait to be sent", `document.querySelectorAll('[data-testid="member-pending-file"]').length === 2`)
	p.TypeInto(`[data-testid="member-input"]`, "the blender arrived broken")
	p.Click(`[data-testid="member-send"]`)
	p.WaitFor("the picture shows inline, loaded from the emulator",
		`(() => { const i = document.querySelector('[data-testid="dm-transcript"] [data-testid="dm-attachment-image"]'); return !!i && i.complete && i.naturalWidth === 40 && i.naturalHeight === 30; })()`)
	p.WaitFor("the text file is a download link",
		`Array.from(document.querySelectorAll('[data-testid="dm-transcript"] a[data-testid="dm-attachment-file"]')).some(a => a.getAttribute("download") === "order.txt" && a.textContent.includes("order.txt"))`)
	p.WaitText(`[data-testid="dm-transcript"] [data-testid="dm-message"][data-from="member"]`, "the blender arrived broken")
	p.WaitFor("nothing waits to be sent", `document.querySelector('[data-testid="member-pending"]').hidden && document.querySelector('[data-testid="member-input"]').value === ""`)

	var sent discordemu.Record
	for _, r := range sb.discord.UserMessages(testMemberID) {
		if !r.FromBot && len(r.Message.Attachments) > 0 {
			sent = r
		}
	}
	atts := sent.Message.Attachments
	if sent.Message.Content != "the blender arrived broken" || len(atts) != 2 {
		t.Fatalf("the member's DM in the emulator = %+v", sent.Message)
	}
	if a := atts[0]; a.Filename != "broken_blender.png" || a.ContentType != "image/png" || a.Size != len(pic) || a.Width == nil || *a.Width != 40 {
		t.Errorf("picture attachment = %+v", a)
	}
	if a := atts[1]; a.Filename != "order.txt" || !strings.HasPrefix(a.ContentType, "text/plain") || a.Size != len(notes) {
		t.Errorf("text attachment = %+v", a)
	}
	if status, body := fetch(t, sb.discord.Transport(), atts[0].URL); status != http.StatusOK || !bytes.Equal(body, pic) {
		t.Errorf("the bot's CDN URL answers %d", status)
	}

	// A file picked and removed again is not sent.
	p.Do("pick a file", chromedp.SetUploadFiles(chromedp.CSS(`[data-testid="member-files"]`), []string{notesPath}))
	p.WaitFor("the file waits", `document.querySelectorAll('[data-testid="member-pending-file"]').length === 1`)
	p.Click(`[data-testid="member-pending-file"] [data-testid="pending-remove"]`)
	p.WaitFor("nothing waits", `document.querySelector('[data-testid="member-pending"]').hidden`)

	// The agent attaches a picture to a reply.
	if err := sb.bot.handOver(testMemberID); err != nil {
		t.Fatal(err)
	}
	p.WaitFor("the task is listed", `document.querySelectorAll('[data-testid="task"]').length === 1`)
	p.Click(`[data-testid="task"]`)
	p.WaitFor("the agent cannot attach before accepting", `document.querySelector('[data-testid="agent-files"]').disabled`)
	p.Click(`[data-testid="accept"]`)
	p.WaitFor("the agent can attach", `!document.querySelector('[data-testid="agent-files"]').disabled`)
	p.Do("pick a picture", chromedp.SetUploadFiles(chromedp.CSS(`[data-testid="agent-files"]`), []string{stepsPath}))
	p.WaitFor("the picture waits", `document.querySelectorAll('[data-testid="agent-pending-file"]').length === 1`)
	p.Click(`[data-testid="agent-send"]`)
	p.WaitFor("the agent's picture shows inline",
		`(() => { const i = document.querySelector('[data-testid="agent-message"][data-role="agent"] [data-testid="agent-attachment-image"]'); return !!i && i.complete && i.naturalWidth === 24 && i.naturalHeight === 16; })()`)
	p.WaitFor("nothing waits on the agent's side", `document.querySelector('[data-testid="agent-pending"]').hidden`)

	tv := sb.twilio.Tasks()
	msgs, err := sb.twilio.ConversationMessages(tv[0].ConversationSID)
	if err != nil {
		t.Fatal(err)
	}
	last := msgs[len(msgs)-1]
	if last.Role != twilioemu.RoleAgent || last.Body != "" || len(last.Media) != 1 || last.Media[0].Filename != "steps.png" || last.Media[0].ContentType != "image/png" {
		t.Fatalf("the agent's message in the emulator = %+v", last)
	}
	if _, data, err := sb.twilio.Media(last.Media[0].SID); err != nil || !bytes.Equal(data, steps) {
		t.Fatalf("the uploaded media = %d bytes, %v", len(data), err)
	}
	if dir := os.Getenv("FLEXCORD_SANDBOX_SCREENSHOTS"); dir != "" {
		p.Viewport(1440, 900)
		p.WaitFor("the layout settles", `document.documentElement.clientWidth === 1440`)
		p.ScreenshotViewport(filepath.Join(dir, "sandbox-attachments.png"))
	}
	if bad := webtest.Eval[[]string](p, layoutProblems); len(bad) > 0 {
		t.Errorf("out of the window: %s", strings.Join(bad, "; "))
	}
	p.CheckConsole()
}
