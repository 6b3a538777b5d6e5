package twilioemu_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	conversations "github.com/twilio/twilio-go/rest/conversations/v1"

	"github.com/flexcord/flexcord/sandbox/twilioemu"
)

// pngBytes is a 1×1 PNG.
var pngBytes = []byte{
	0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
	0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
	0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
	0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
	0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
}

// mcsResource is the Media resource as the Media Content Service returns it.
type mcsResource struct {
	SID         string  `json:"sid"`
	AccountSID  string  `json:"account_sid"`
	ServiceSID  string  `json:"service_sid"`
	DateCreated string  `json:"date_created"`
	ChannelSID  *string `json:"channel_sid"`
	MessageSID  *string `json:"message_sid"`
	Author      string  `json:"author"`
	Size        int     `json:"size"`
	ContentType string  `json:"content_type"`
	Filename    *string `json:"filename"`
	Category    string  `json:"category"`
	URL         string  `json:"url"`
	Links       struct {
		Content                string `json:"content"`
		ContentDirectTemporary string `json:"content_direct_temporary"`
	} `json:"links"`
}

// mcs sends a request to the Media Content Service through the emulator's
// transport, the way flexcord does (twilio-go has no Media resource).
func mcs(t *testing.T, emu *twilioemu.Server, method, path string, header http.Header, body []byte, user, pass string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, "https://mcs.us1.twilio.com"+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := (&http.Client{Transport: emu.Transport(), Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out, resp.Header
}

// upload POSTs a file to the Media Content Service.
func upload(t *testing.T, emu *twilioemu.Server, contentType, filename string, data []byte) mcsResource {
	t.Helper()
	h := http.Header{"Content-Type": {contentType}}
	if filename != "" {
		h.Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	}
	status, body, _ := mcs(t, emu, http.MethodPost, "/v1/Services/"+emu.ChatServiceSID()+"/Media", h, data, testAccountSID, testAuthToken)
	var m mcsResource
	if err := json.Unmarshal(body, &m); err != nil || status != http.StatusCreated {
		t.Fatalf("upload = %d %s", status, body)
	}
	return m
}

// getURL GETs an absolute URL through the emulator's transport, without
// credentials.
func getURL(t *testing.T, emu *twilioemu.Server, raw string) (int, []byte) {
	t.Helper()
	resp, err := (&http.Client{Transport: emu.Transport(), Timeout: 5 * time.Second}).Get(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestMediaContentService(t *testing.T) {
	emu := startEmu(t, func(o *twilioemu.Options) {
		o.APIKeySID, o.APIKeySecret = "SK0123456789abcdef0123456789abcdef", "keySecret0123"
	})
	svc := emu.ChatServiceSID()
	m := upload(t, emu, "image/png", "box.png", pngBytes)
	base := "/v1/Services/" + svc + "/Media/" + m.SID
	if !strings.HasPrefix(m.SID, "ME") || len(m.SID) != 34 || m.ServiceSID != svc || m.AccountSID != testAccountSID ||
		m.ContentType != "image/png" || m.Filename == nil || *m.Filename != "box.png" || m.Size != len(pngBytes) ||
		m.Category != "media" || m.Author != "system" || m.MessageSID != nil || m.ChannelSID != nil ||
		m.URL != base || m.Links.Content != base+"/Content" {
		t.Fatalf("media resource = %+v", m)
	}
	if _, err := time.Parse(time.RFC3339Nano, m.DateCreated); err != nil {
		t.Errorf("date_created %q: %v", m.DateCreated, err)
	}
	tmp, err := url.Parse(m.Links.ContentDirectTemporary)
	if err != nil || tmp.Host != "media.us1.twilio.com" || tmp.Path != "/"+m.SID || tmp.Query().Get("Expires") == "" || tmp.Query().Get("Signature") == "" {
		t.Fatalf("content_direct_temporary = %s", m.Links.ContentDirectTemporary)
	}

	t.Run("content with Basic auth", func(t *testing.T) {
		status, body, h := mcs(t, emu, http.MethodGet, base+"/Content", nil, nil, testAccountSID, testAuthToken)
		if status != http.StatusOK || !bytes.Equal(body, pngBytes) || h.Get("Content-Type") != "image/png" {
			t.Fatalf("GET Content = %d %s", status, h.Get("Content-Type"))
		}
		if status, _, _ := mcs(t, emu, http.MethodGet, base+"/Content", nil, nil, "", ""); status != http.StatusUnauthorized {
			t.Fatalf("GET Content without credentials = %d, want 401", status)
		}
		if status, _, _ := mcs(t, emu, http.MethodGet, base, nil, nil, "SK0123456789abcdef0123456789abcdef", "keySecret0123"); status != http.StatusOK {
			t.Fatalf("GET with an API key = %d", status)
		}
		if status, _, _ := mcs(t, emu, http.MethodGet, "/v1/Services/IS00000000000000000000000000000000/Media/"+m.SID, nil, nil, testAccountSID, testAuthToken); status != http.StatusNotFound {
			t.Fatalf("GET under another service = %d, want 404", status)
		}
	})

	t.Run("temporary URLs expire", func(t *testing.T) {
		if status, body := getURL(t, emu, m.Links.ContentDirectTemporary); status != http.StatusOK || !bytes.Equal(body, pngBytes) {
			t.Fatalf("GET temporary URL = %d", status)
		}
		if status, _ := getURL(t, emu, strings.Replace(m.Links.ContentDirectTemporary, "Expires=", "Expires=9", 1)); status != http.StatusForbidden {
			t.Fatalf("tampered temporary URL = %d, want 403", status)
		}
		if _, err := emu.AdvanceClock(6 * time.Minute); err != nil {
			t.Fatal(err)
		}
		if status, _ := getURL(t, emu, m.Links.ContentDirectTemporary); status != http.StatusForbidden {
			t.Fatalf("expired temporary URL = %d, want 403", status)
		}
		status, body, _ := mcs(t, emu, http.MethodGet, base, nil, nil, testAccountSID, testAuthToken)
		var fresh mcsResource
		if err := json.Unmarshal(body, &fresh); err != nil || status != http.StatusOK || fresh.Links.ContentDirectTemporary == m.Links.ContentDirectTemporary {
			t.Fatalf("GET media = %d %s, want a fresh temporary URL", status, body)
		}
		if status, body := getURL(t, emu, fresh.Links.ContentDirectTemporary); status != http.StatusOK || !bytes.Equal(body, pngBytes) {
			t.Fatalf("GET fresh temporary URL = %d", status)
		}
	})

	t.Run("a message carries the media", func(t *testing.T) {
		rv := newReceiver(t)
		rc := restClient(emu, testAuthToken, 5*time.Second)
		cv := rc.ConversationsV1
		ch := setupConversation(t, cv, rv.srv.URL+"/hook", "post", "onMessageAdded")
		msg, err := cv.CreateConversationMessage(ch, (&conversations.CreateConversationMessageParams{}).
			SetAuthor("discord_42").SetMediaSid(m.SID).SetXTwilioWebhookEnabled("true"))
		if err != nil {
			t.Fatalf("CreateConversationMessage with MediaSid: %v", err)
		}
		if msg.Body != nil || msg.Media == nil || len(*msg.Media) != 1 {
			t.Fatalf("message = %+v, want no body and one media", msg)
		}
		got := (*msg.Media)[0].(map[string]any)
		if got["sid"] != m.SID || got["content_type"] != "image/png" || got["filename"] != "box.png" || got["size"] != float64(len(pngBytes)) || got["category"] != "media" {
			t.Fatalf("message media = %v", got)
		}
		hook := rv.next(t)
		var hm []map[string]any
		if err := json.Unmarshal([]byte(hook.Form.Get("Media")), &hm); err != nil || len(hm) != 1 {
			t.Fatalf("onMessageAdded Media = %q", hook.Form.Get("Media"))
		}
		if hm[0]["Sid"] != m.SID || hm[0]["ContentType"] != "image/png" || hm[0]["Filename"] != "box.png" || hm[0]["Size"] != float64(len(pngBytes)) {
			t.Fatalf("onMessageAdded Media = %v", hm[0])
		}
		if hook.Form.Get("Body") != "" || hook.Form.Get("MessageSid") != str(msg.Sid) {
			t.Fatalf("onMessageAdded = %v", hook.Form)
		}
		status, body, _ := mcs(t, emu, http.MethodGet, base, nil, nil, testAccountSID, testAuthToken)
		var now mcsResource
		if err := json.Unmarshal(body, &now); err != nil || status != http.StatusOK || now.MessageSID == nil || *now.MessageSID != str(msg.Sid) || *now.ChannelSID != ch {
			t.Fatalf("media after the message = %s", body)
		}
		list, err := cv.ListConversationMessage(ch, (&conversations.ListConversationMessageParams{}).SetPageSize(10))
		if err != nil || len(list) != 1 || list[0].Media == nil || len(*list[0].Media) != 1 {
			t.Fatalf("ListConversationMessage = %+v, %v", list, err)
		}

		// A Media resource goes on one message only; unknown ones are refused.
		_, err = cv.CreateConversationMessage(ch, (&conversations.CreateConversationMessageParams{}).SetMediaSid(m.SID))
		if te := twilioError(t, err); te.Code != 50510 || te.Status != http.StatusBadRequest {
			t.Fatalf("MediaSid used twice: %+v", te)
		}
		_, err = cv.CreateConversationMessage(ch, (&conversations.CreateConversationMessageParams{}).SetMediaSid("ME00000000000000000000000000000000"))
		if te := twilioError(t, err); te.Code != 50510 {
			t.Fatalf("unknown MediaSid: %+v", te)
		}
	})
}

func TestMediaUploadLimits(t *testing.T) {
	emu := startEmu(t, func(o *twilioemu.Options) { o.MaxMediaSize = 100 })
	path := "/v1/Services/" + emu.ChatServiceSID() + "/Media"
	h := http.Header{"Content-Type": {"application/octet-stream"}}
	status, body, _ := mcs(t, emu, http.MethodPost, path, h, make([]byte, 101), testAccountSID, testAuthToken)
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), `"code":50512`) {
		t.Fatalf("upload over the limit = %d %s, want 413 with 50512", status, body)
	}
	if status, _, _ := mcs(t, emu, http.MethodPost, path, h, make([]byte, 100), "", ""); status != http.StatusUnauthorized {
		t.Fatalf("upload without credentials = %d, want 401", status)
	}
	status, body, _ = mcs(t, emu, http.MethodPost, path, h, make([]byte, 100), testAccountSID, testAuthToken)
	var m mcsResource
	if err := json.Unmarshal(body, &m); err != nil || status != http.StatusCreated || m.Filename != nil || m.Size != 100 {
		t.Fatalf("upload at the limit without a filename = %d %s", status, body)
	}
	if _, err := emu.UploadMedia(twilioemu.MediaFile{Filename: "big.bin", Data: make([]byte, 101)}); err == nil {
		t.Fatal("UploadMedia over the limit succeeded")
	}
}

func TestAgentMedia(t *testing.T) {
	f := newFlexFixture(t, "")
	if _, err := f.emu.AcceptTask(f.task, "Ana Agent"); err != nil {
		t.Fatal(err)
	}
	// messageAdded skips the task's callbacks and other conversation
	// events up to the next onMessageAdded.
	messageAdded := func() hookRequest {
		t.Helper()
		for {
			if r := f.rv.next(t); r.Form.Get("EventType") == "onMessageAdded" {
				verify(t, r, f.convURL)
				return r
			}
		}
	}

	// Go API: upload as the agent and post, with an empty body.
	mv, err := f.emu.SendAgentMedia(f.task, "", twilioemu.MediaFile{Filename: "steps.png", ContentType: "image/png", Data: pngBytes})
	if err != nil {
		t.Fatal(err)
	}
	if mv.Role != twilioemu.RoleAgent || mv.Body != "" || len(mv.Media) != 1 || mv.Media[0].Filename != "steps.png" || mv.Media[0].Author != mv.Author {
		t.Fatalf("agent media message = %+v", mv)
	}
	hook := messageAdded()
	if hook.Form.Get("Source") != "SDK" || !strings.Contains(hook.Form.Get("Media"), mv.Media[0].SID) {
		t.Fatalf("onMessageAdded = %v", hook.Form)
	}
	resp, err := http.Get(f.emu.URL() + mv.Media[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(b, pngBytes) || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("control media content = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	// Control API: upload, then a message naming the media.
	req, _ := http.NewRequest(http.MethodPost, f.emu.URL()+"/_emu/twilio/media?filename="+url.QueryEscape("how to.txt"), strings.NewReader("1. unplug it"))
	req.Header.Set("Content-Type", "text/plain")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var up twilioemu.MediaView
	_ = json.NewDecoder(resp.Body).Decode(&up)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || up.Filename != "how to.txt" || up.Size != len("1. unplug it") {
		t.Fatalf("control upload = %d %+v", resp.StatusCode, up)
	}
	var sent twilioemu.MessageView
	ctl(t, f.emu, http.MethodPost, "/_emu/twilio/tasks/"+f.task+"/messages", `{"body":"see the file","media_sids":["`+up.SID+`"]}`, http.StatusCreated, &sent)
	if len(sent.Media) != 1 || sent.Media[0].SID != up.SID || sent.Body != "see the file" {
		t.Fatalf("control media message = %+v", sent)
	}
	hook = messageAdded()
	if hook.Form.Get("Body") != "see the file" || !strings.Contains(hook.Form.Get("Media"), `"Filename":"how to.txt"`) {
		t.Fatalf("onMessageAdded = %v", hook.Form)
	}
	ctl(t, f.emu, http.MethodPost, "/_emu/twilio/tasks/"+f.task+"/messages", `{"media_sids":["`+up.SID+`"]}`, http.StatusBadRequest, nil)
	ctl(t, f.emu, http.MethodPost, "/_emu/twilio/tasks/"+f.task+"/messages", `{"media":[{"filename":"a.png","content_type":"image/png","data":"iVBORw0KGgo="}]}`, http.StatusCreated, &sent)
	if len(sent.Media) != 1 || sent.Media[0].Size != 8 {
		t.Fatalf("control inline media message = %+v", sent)
	}
	msgs, err := f.emu.ConversationMessages(f.ch)
	if err != nil || len(msgs) != 4 || len(msgs[1].Media) != 1 {
		t.Fatalf("ConversationMessages = %+v, %v", msgs, err)
	}
}
