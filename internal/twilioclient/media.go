package twilioclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// MCSBase is the Media Content Service of Conversations, where media is uploaded and fetched.
// twilio-go has no client for it.
const MCSBase = "https://mcs.us1.twilio.com"

// Media uploads files to the Media Content Service and fetches them, with the account's
// credentials (Basic auth).
type Media struct {
	user, pass string
	http       *http.Client
	base       string
}

// MediaResource is what the Media Content Service says of one file.
type MediaResource struct {
	SID         string `json:"sid"`
	ServiceSID  string `json:"service_sid"`
	ContentType string `json:"content_type"`
	Filename    string `json:"filename"`
	Size        int64  `json:"size"`
	Links       struct {
		Content                string `json:"content"`
		ContentDirectTemporary string `json:"content_direct_temporary"`
	} `json:"links"`
}

// MediaError is a refusal of the Media Content Service: its HTTP status and Twilio error code.
type MediaError struct {
	Status  int
	Code    int
	Message string
}

func (e *MediaError) Error() string {
	return fmt.Sprintf("media content service: HTTP %d, code %d: %s", e.Status, e.Code, e.Message)
}

func newMedia(creds Credentials, hc *http.Client) *Media {
	user, pass := creds.AccountSID, creds.AuthToken
	if creds.UsesAPIKey() {
		user, pass = creds.APIKeySID, creds.APIKeySecret
	}
	return &Media{user: user, pass: pass, http: hc, base: MCSBase}
}

// Upload stores a file in the Conversation Service serviceSID and returns its Media resource;
// its SID goes into a message's MediaSid.
func (m *Media) Upload(ctx context.Context, serviceSID, filename, contentType string, data []byte) (MediaResource, error) {
	u := m.base + "/v1/Services/" + url.PathEscape(serviceSID) + "/Media"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(data))
	if err != nil {
		return MediaResource{}, err
	}
	req.Header.Set("Content-Type", contentType)
	if filename != "" {
		req.Header.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": filename}))
	}
	var res MediaResource
	err = m.do(req, &res)
	return res, err
}

// Fetch returns a file of the Conversation Service serviceSID, read from its temporary URL, at
// most limit bytes (a larger file fails with a *MediaError of status 413).
func (m *Media) Fetch(ctx context.Context, serviceSID, mediaSID string, limit int64) (MediaResource, []byte, error) {
	u := m.base + "/v1/Services/" + url.PathEscape(serviceSID) + "/Media/" + url.PathEscape(mediaSID)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return MediaResource{}, nil, err
	}
	var res MediaResource
	if err := m.do(req, &res); err != nil {
		return MediaResource{}, nil, err
	}
	if res.Size > limit {
		return res, nil, &MediaError{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("%s is %d bytes, over %d", mediaSID, res.Size, limit)}
	}
	src := res.Links.ContentDirectTemporary
	auth := false
	if src == "" {
		src, auth = res.Links.Content, true
	}
	if strings.HasPrefix(src, "/") {
		src = m.base + src
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return res, nil, err
	}
	var data []byte
	err = m.doRaw(req, auth, limit, &data)
	return res, data, err
}

// do sends req with Basic auth and decodes its JSON answer into out.
func (m *Media) do(req *http.Request, out any) error {
	var body []byte
	if err := m.doRaw(req, true, 1<<20, &body); err != nil {
		return err
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("media content service: decode: %w", err)
	}
	return nil
}

// doRaw sends req (with Basic auth when auth) and reads at most limit bytes of a 2xx answer.
func (m *Media) doRaw(req *http.Request, auth bool, limit int64, out *[]byte) error {
	if auth {
		req.SetBasicAuth(m.user, m.pass)
	}
	resp, err := m.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &e)
		if e.Message == "" {
			e.Message = strings.TrimSpace(string(body[:min(len(body), 200)]))
		}
		return &MediaError{Status: resp.StatusCode, Code: e.Code, Message: e.Message}
	}
	if int64(len(body)) > limit {
		return &MediaError{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("over %d bytes", limit)}
	}
	*out = body
	return nil
}
