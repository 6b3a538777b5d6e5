package discordemu_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/flexcord/flexcord/sandbox/discordemu"
)

// pngImage returns a w×h PNG.
func pngImage(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	img.Set(0, 0, color.RGBA{R: 0x58, G: 0x65, B: 0xf2, A: 0xff})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// formFile is one file part of a multipart test body.
type formFile struct {
	field, name, contentType string
	data                     []byte
}

// multipartBody builds a multipart/form-data body with payload_json (when
// not empty) and the files.
func multipartBody(t *testing.T, payload string, files ...formFile) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if payload != "" {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="payload_json"`)
		h.Set("Content-Type", "application/json")
		p, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(p, payload)
	}
	for _, f := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, f.field, f.name))
		if f.contentType != "" {
			h.Set("Content-Type", f.contentType)
		}
		p, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = p.Write(f.data)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), buf.Bytes()
}

// rawSend sends a request with any body to the emulator as the bot.
func rawSend(t *testing.T, emu *discordemu.Server, method, path, contentType string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "https://discord.com/api/v10"+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bot "+emu.Token())
	req.Header.Set("Content-Type", contentType)
	resp, err := (&http.Client{Transport: emu.Transport(), Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(out)
}

// download GETs an attachment URL through the emulator's transport, the
// way flexcord fetches a file.
func download(t *testing.T, emu *discordemu.Server, rawURL string) (int, string, []byte) {
	t.Helper()
	resp, err := (&http.Client{Transport: emu.Transport(), Timeout: 10 * time.Second}).Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// checkSignedURL checks the shape of a signed attachment URL.
func checkSignedURL(t *testing.T, raw, host, channelID, attachmentID, filename string, lifetime time.Duration) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "https" || u.Host != host || u.Path != "/attachments/"+channelID+"/"+attachmentID+"/"+filename {
		t.Errorf("attachment URL %s: want https://%s/attachments/%s/%s/%s", raw, host, channelID, attachmentID, filename)
	}
	q := u.Query()
	ex, errEx := strconv.ParseInt(q.Get("ex"), 16, 64)
	is, errIs := strconv.ParseInt(q.Get("is"), 16, 64)
	if errEx != nil || errIs != nil || time.Duration(ex-is)*time.Second != lifetime || len(q.Get("hm")) != 64 {
		t.Errorf("attachment URL %s: want hex ex and is %s apart and a 64-digit hm", raw, lifetime)
	}
}

func TestUploadFiles(t *testing.T) {
	clk := newClock()
	emu := discordemu.NewTest(t, discordemu.Options{Members: members(), Clock: clk.Now})
	dg := newSession(t, emu)
	dm, err := dg.UserChannelCreate(aliceID)
	if err != nil {
		t.Fatal(err)
	}
	pic := pngImage(t, 3, 2)
	notes := []byte("order 4411: the blender arrived broken\n")

	// discordgo's multipart body: payload_json and files[0], files[1], no
	// content and no attachments metadata.
	sent, err := dg.ChannelMessageSendComplex(dm.ID, &discordgo.MessageSend{Files: []*discordgo.File{
		{Name: "photo of box.png", ContentType: "image/png", Reader: bytes.NewReader(pic)},
		{Name: "notes.txt", Reader: bytes.NewReader(notes)},
	}})
	if err != nil {
		t.Fatalf("send files: %v", err)
	}
	if sent.Content != "" || len(sent.Attachments) != 2 {
		t.Fatalf("sent message = %+v, want two attachments and no content", sent)
	}
	img, txt := sent.Attachments[0], sent.Attachments[1]
	if img.Filename != "photo_of_box.png" || img.ContentType != "image/png" || img.Size != len(pic) || img.Width != 3 || img.Height != 2 {
		t.Errorf("image attachment = %+v", img)
	}
	if txt.Filename != "notes.txt" || !strings.HasPrefix(txt.ContentType, "text/plain") || txt.Size != len(notes) || txt.Width != 0 {
		t.Errorf("text attachment = %+v", txt)
	}
	checkSignedURL(t, img.URL, "cdn.discordapp.com", dm.ID, img.ID, img.Filename, 24*time.Hour)
	checkSignedURL(t, img.ProxyURL, "media.discordapp.net", dm.ID, img.ID, img.Filename, 24*time.Hour)

	for _, u := range []string{img.URL, img.ProxyURL} {
		status, ct, body := download(t, emu, u)
		if status != http.StatusOK || ct != "image/png" || !bytes.Equal(body, pic) {
			t.Fatalf("GET %s = %d %s (%d bytes), want the picture", u, status, ct, len(body))
		}
	}
	if status, _, body := download(t, emu, txt.URL); status != http.StatusOK || !bytes.Equal(body, notes) {
		t.Fatalf("GET %s = %d %q", txt.URL, status, body)
	}

	t.Run("a tampered URL is gone", func(t *testing.T) {
		u, _ := url.Parse(img.URL)
		q := u.Query()
		q.Set("ex", strconv.FormatInt(clk.Now().Add(48*time.Hour).Unix(), 16))
		u.RawQuery = q.Encode()
		for _, bad := range []string{u.String(), strings.Split(img.URL, "?")[0], strings.Replace(img.URL, img.ID, txt.ID, 1)} {
			status, _, body := download(t, emu, bad)
			if status != http.StatusNotFound || string(body) != "This content is no longer available." {
				t.Errorf("GET %s = %d %q, want 404", bad, status, body)
			}
		}
	})

	t.Run("URLs expire and fetched messages carry fresh ones", func(t *testing.T) {
		clk.Advance(24*time.Hour + time.Second)
		if status, _, _ := download(t, emu, img.URL); status != http.StatusNotFound {
			t.Fatalf("expired URL answered %d, want 404", status)
		}
		msgs, err := dg.ChannelMessages(dm.ID, 10, "", "", "")
		if err != nil || len(msgs) != 1 || len(msgs[0].Attachments) != 2 {
			t.Fatalf("ChannelMessages = %+v, %v", msgs, err)
		}
		fresh := msgs[0].Attachments[0]
		if fresh.URL == img.URL {
			t.Fatal("the fetched message carries the expired URL")
		}
		if status, _, body := download(t, emu, fresh.URL); status != http.StatusOK || !bytes.Equal(body, pic) {
			t.Fatalf("GET fresh URL = %d", status)
		}
	})

	t.Run("attachments metadata names, describes and orders the files", func(t *testing.T) {
		payload := `{"content":"two files","attachments":[{"id":1,"filename":"renamed.txt","description":"the notes"},{"id":"0","is_spoiler":true}]}`
		ct, body := multipartBody(t, payload,
			formFile{field: "files[0]", name: "a.png", contentType: "image/png", data: pic},
			formFile{field: "files[1]", name: "b.txt", contentType: "text/plain", data: notes})
		status, out := rawSend(t, emu, http.MethodPost, "/channels/"+dm.ID+"/messages", ct, body)
		var m discordemu.Message
		if err := json.Unmarshal([]byte(out), &m); err != nil || status != http.StatusOK {
			t.Fatalf("POST = %d %s", status, out)
		}
		if m.Content != "two files" || len(m.Attachments) != 2 {
			t.Fatalf("message = %s", out)
		}
		if a := m.Attachments[0]; a.Filename != "renamed.txt" || a.Description != "the notes" {
			t.Errorf("first attachment = %+v", a)
		}
		if a := m.Attachments[1]; a.Filename != "a.png" || a.Flags != 1<<3 {
			t.Errorf("second attachment = %+v, want the spoiler flag", a)
		}
		data, ctype, found := emu.AttachmentData(m.Attachments[0].ID)
		if !found || !bytes.Equal(data, notes) || !strings.HasPrefix(ctype, "text/plain") {
			t.Errorf("AttachmentData = %q %q %v", data, ctype, found)
		}
	})

	t.Run("edits keep the listed attachments and add new files", func(t *testing.T) {
		edited, err := dg.ChannelMessageEditComplex(&discordgo.MessageEdit{
			ID: sent.ID, Channel: dm.ID,
			Files: []*discordgo.File{{Name: "second.png", ContentType: "image/png", Reader: bytes.NewReader(pic)}},
		})
		if err != nil || len(edited.Attachments) != 3 || edited.Attachments[2].Filename != "second.png" {
			t.Fatalf("edit adding a file = %+v, %v", edited, err)
		}
		status, out := rawCall(t, emu, http.MethodPatch, "/channels/"+dm.ID+"/messages/"+sent.ID,
			fmt.Sprintf(`{"content":"only the notes","attachments":[{"id":%q}]}`, txt.ID))
		var m discordemu.Message
		if err := json.Unmarshal([]byte(out), &m); err != nil || status != http.StatusOK || len(m.Attachments) != 1 || m.Attachments[0].ID != txt.ID {
			t.Fatalf("edit listing one attachment = %d %s", status, out)
		}
		status, out = rawCall(t, emu, http.MethodPatch, "/channels/"+dm.ID+"/messages/"+sent.ID, `{"attachments":[]}`)
		if err := json.Unmarshal([]byte(out), &m); err != nil || status != http.StatusOK || len(m.Attachments) != 0 {
			t.Fatalf("edit removing every attachment = %d %s", status, out)
		}
	})
}

func TestUploadLimits(t *testing.T) {
	emu := discordemu.NewTest(t, discordemu.Options{Members: members(), MaxFileSize: 1000, MaxRequestSize: 4000})
	dm, err := emu.DMChannel(aliceID)
	if err != nil {
		t.Fatal(err)
	}
	path := "/channels/" + dm + "/messages"
	file := func(n, size int) formFile {
		return formFile{field: fmt.Sprintf("files[%d]", n), name: fmt.Sprintf("f%d.bin", n), data: bytes.Repeat([]byte{'x'}, size)}
	}
	tooLarge := `{"code":40005,"message":"Request entity too large"}`
	tests := []struct {
		name       string
		payload    string
		files      []formFile
		wantStatus int
		want       string
	}{
		{name: "a file over the file limit", payload: `{}`, files: []formFile{file(0, 1001)}, wantStatus: 413, want: tooLarge},
		{name: "a request over the request limit", payload: `{}`, files: []formFile{file(0, 900), file(1, 900), file(2, 900), file(3, 900), file(4, 900)}, wantStatus: 413, want: tooLarge},
		{name: "eleven files", payload: `{}`, files: func() []formFile {
			var fs []formFile
			for i := range 11 {
				fs = append(fs, file(i, 10))
			}
			return fs
		}(), wantStatus: 400, want: `"code":50035`},
		{name: "an attachment without its file", payload: `{"attachments":[{"id":"3"}]}`, files: []formFile{file(0, 10)}, wantStatus: 400, want: `"attachments":{"0":{"id":{"_errors"`},
		{name: "nothing at all", payload: `{}`, wantStatus: 400, want: `"code":50006`},
		{name: "files only", payload: `{}`, files: []formFile{file(0, 1000)}, wantStatus: 200, want: `"filename":"f0.bin"`},
		{name: "no payload_json, plain fields", files: []formFile{file(0, 10)}, wantStatus: 200, want: `"size":10`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct, body := multipartBody(t, tt.payload, tt.files...)
			status, out := rawSend(t, emu, http.MethodPost, path, ct, body)
			if status != tt.wantStatus || !strings.Contains(out, tt.want) {
				t.Fatalf("POST = %d %s, want %d with %s", status, out, tt.wantStatus, tt.want)
			}
		})
	}

	t.Run("member files over the limit", func(t *testing.T) {
		_, err := emu.SendDMWithFiles(aliceID, "", discordemu.File{Name: "big.bin", Data: make([]byte, 1001)})
		if !errors.Is(err, discordemu.ErrFileTooLarge) {
			t.Fatalf("SendDMWithFiles = %v, want ErrFileTooLarge", err)
		}
		body, _ := json.Marshal(map[string]any{"files": []map[string]any{{"filename": "big.bin", "data": make([]byte, 1001)}}})
		resp, err := http.Post(emu.URL()+"/_emu/discord/members/"+aliceID+"/dm", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("control API answered %d, want 413", resp.StatusCode)
		}
	})
}

func TestMemberDMWithFiles(t *testing.T) {
	emu := discordemu.NewTest(t, discordemu.Options{Members: members(), HeartbeatInterval: 500 * time.Millisecond})
	dg := newSession(t, emu)
	msgs, _ := openSession(t, dg)
	pic := pngImage(t, 4, 5)

	rec, err := emu.SendDMWithFiles(aliceID, "here is the photo", discordemu.File{Name: "broken.png", ContentType: "image/png", Data: pic, Description: "a broken blender"})
	if err != nil {
		t.Fatal(err)
	}
	got := receive(t, msgs, "MESSAGE_CREATE with a file")
	if got.ID != rec.Message.ID || got.Content != "here is the photo" || len(got.Attachments) != 1 {
		t.Fatalf("MESSAGE_CREATE = %+v", got.Message)
	}
	a := got.Attachments[0]
	if a.Filename != "broken.png" || a.ContentType != "image/png" || a.Size != len(pic) || a.Width != 4 || a.Height != 5 {
		t.Fatalf("attachment = %+v", a)
	}
	checkSignedURL(t, a.URL, "cdn.discordapp.com", got.ChannelID, a.ID, "broken.png", 24*time.Hour)
	if status, _, body := download(t, emu, a.URL); status != http.StatusOK || !bytes.Equal(body, pic) {
		t.Fatalf("download = %d", status)
	}

	t.Run("through the control API as JSON", func(t *testing.T) {
		body, _ := json.Marshal(map[string]any{"content": "", "files": []map[string]any{{
			"filename": "log.txt", "content_type": "text/plain", "data": base64.StdEncoding.EncodeToString([]byte("E42 at boot")),
		}}})
		resp, err := http.Post(emu.URL()+"/_emu/discord/members/"+aliceID+"/dm", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r discordemu.Record
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != http.StatusOK || len(r.Message.Attachments) != 1 {
			t.Fatalf("control API = %d %+v %v", resp.StatusCode, r, err)
		}
		m := receive(t, msgs, "MESSAGE_CREATE")
		if len(m.Attachments) != 1 || m.Attachments[0].Filename != "log.txt" || m.Attachments[0].Size != len("E42 at boot") {
			t.Fatalf("MESSAGE_CREATE = %+v", m.Message)
		}
	})

	t.Run("through the control API as a form", func(t *testing.T) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		_ = mw.WriteField("content", "form upload")
		fw, _ := mw.CreateFormFile("files[0]", "pic.png")
		_, _ = fw.Write(pic)
		_ = mw.Close()
		resp, err := http.Post(emu.URL()+"/_emu/discord/members/"+aliceID+"/dm", mw.FormDataContentType(), &buf)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		m := receive(t, msgs, "MESSAGE_CREATE")
		if resp.StatusCode != http.StatusOK || m.Content != "form upload" || len(m.Attachments) != 1 || m.Attachments[0].ContentType != "image/png" {
			t.Fatalf("control API = %d, MESSAGE_CREATE = %+v", resp.StatusCode, m.Message)
		}
		// The page shows it from the unsigned control route.
		local, err := http.Get(emu.URL() + "/_emu/discord/attachments/" + m.ChannelID + "/" + m.Attachments[0].ID + "/pic.png")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(local.Body)
		_ = local.Body.Close()
		if local.StatusCode != http.StatusOK || !bytes.Equal(b, pic) {
			t.Fatalf("control attachment = %d", local.StatusCode)
		}
	})
}

func TestInteractionResponsesWithFiles(t *testing.T) {
	emu := discordemu.NewTest(t, discordemu.Options{Members: members(), HeartbeatInterval: 500 * time.Millisecond})
	dg := newSession(t, emu)
	_, inters := openSession(t, dg)
	registerCommands(t, dg, emu)
	pic := pngImage(t, 2, 2)

	info, err := emu.RunCommand(context.Background(), aliceID, discordemu.CommandInput{Name: "helpme"})
	if err != nil {
		t.Fatal(err)
	}
	ic := receive(t, inters, "INTERACTION_CREATE")
	err = dg.InteractionRespond(ic.Interaction, &discordgo.InteractionResponse{
		Type: discordgo.InteractionResponseChannelMessageWithSource,
		Data: &discordgo.InteractionResponseData{
			Content: "Here is the guide.",
			Files:   []*discordgo.File{{Name: "guide.png", ContentType: "image/png", Reader: bytes.NewReader(pic)}},
		},
	})
	if err != nil {
		t.Fatalf("InteractionRespond with a file: %v", err)
	}
	var original discordemu.Record
	for _, r := range emu.UserMessages(aliceID) {
		if r.InteractionID == info.ID {
			original = r
		}
	}
	if len(original.Message.Attachments) != 1 || original.Message.Attachments[0].Filename != "guide.png" || original.Message.Content != "Here is the guide." {
		t.Fatalf("response message = %+v", original.Message)
	}
	if status, _, body := download(t, emu, original.Message.Attachments[0].URL); status != http.StatusOK || !bytes.Equal(body, pic) {
		t.Fatalf("download = %d", status)
	}

	followup, err := dg.FollowupMessageCreate(ic.Interaction, true, &discordgo.WebhookParams{
		Files: []*discordgo.File{{Name: "more.txt", Reader: strings.NewReader("step 2")}},
	})
	if err != nil || len(followup.Attachments) != 1 || followup.Attachments[0].Filename != "more.txt" {
		t.Fatalf("follow-up with a file = %+v, %v", followup, err)
	}
}

func TestHTTPInteractionAnsweredWithFile(t *testing.T) {
	pic := pngImage(t, 2, 3)
	bot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var mw *multipart.Writer
		var buf bytes.Buffer
		mw = multipart.NewWriter(&buf)
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="payload_json"`)
		h.Set("Content-Type", "application/json")
		p, _ := mw.CreatePart(h)
		_, _ = io.WriteString(p, `{"type":4,"data":{"content":"your receipt","flags":64,"attachments":[{"id":0,"description":"receipt"}]}}`)
		fw, _ := mw.CreateFormFile("files[0]", "receipt.png")
		_, _ = fw.Write(pic)
		_ = mw.Close()
		w.Header().Set("Content-Type", mw.FormDataContentType())
		_, _ = w.Write(buf.Bytes())
	}))
	t.Cleanup(bot.Close)
	emu := discordemu.NewTest(t, discordemu.Options{Members: members(), InteractionsURL: bot.URL})
	dg := newSession(t, emu)
	registerCommands(t, dg, emu)
	info, err := emu.RunCommand(context.Background(), aliceID, discordemu.CommandInput{Name: "helpme"})
	if err != nil || !info.Acknowledged || info.ResponseType != 4 {
		t.Fatalf("RunCommand = %+v, %v", info, err)
	}
	var reply discordemu.Record
	for _, r := range emu.UserMessages(aliceID) {
		if r.InteractionID == info.ID {
			reply = r
		}
	}
	atts := reply.Message.Attachments
	if !reply.Ephemeral || len(atts) != 1 || atts[0].Description != "receipt" || !atts[0].Ephemeral || atts[0].Height == nil || *atts[0].Height != 3 {
		t.Fatalf("reply = %+v", reply)
	}
}

func TestMultipartPayloadIsValidated(t *testing.T) {
	emu := discordemu.NewTest(t, discordemu.Options{Members: members()})
	dm, err := emu.DMChannel(aliceID)
	if err != nil {
		t.Fatal(err)
	}
	pic := pngImage(t, 1, 1)
	ct, body := multipartBody(t, `{"content":"ok","attachments":[{"id":0,"filename":"a.png"}]}`,
		formFile{field: "files[0]", name: "a.png", data: pic})
	if status, out := rawSend(t, emu, http.MethodPost, "/channels/"+dm+"/messages", ct, body); status != http.StatusOK {
		t.Fatalf("POST = %d %s", status, out)
	}
	if v := emu.TakeViolations(); len(v) != 0 {
		t.Fatalf("a valid multipart message (numeric attachment id) broke the contract: %v", v)
	}

	ct, body = multipartBody(t, `{"content":"ok","tts":"loud"}`, formFile{field: "upload", name: "a.png", data: pic})
	_, _ = rawSend(t, emu, http.MethodPost, "/channels/"+dm+"/messages", ct, body)
	v := strings.Join(emu.TakeViolations(), "\n")
	if !strings.Contains(v, "tts") || !strings.Contains(v, `file part "upload" is not named files[n]`) {
		t.Fatalf("violations = %s, want the payload's tts and the file part's name", v)
	}
}
