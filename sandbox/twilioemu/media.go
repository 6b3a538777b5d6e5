package twilioemu

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Media limits and temporary URLs.
const (
	// DefaultMaxMediaSize is the largest file the Media Content Service
	// accepts by default (Conversations media, 150 MB).
	DefaultMaxMediaSize = 150 << 20
	// DefaultMediaURLLifetime is how long a links.content_direct_temporary
	// URL stays valid by default.
	DefaultMediaURLLifetime = 5 * time.Minute
)

// mediaKeyPairID is the Key-Pair-Id of temporary media URLs.
const mediaKeyPairID = "APKAEMULATORMEDIAKEY"

// Twilio error codes of media.
const (
	codeMediaInvalid = 50510 // Conversations: Invalid message media SID
	codeMediaTooBig  = 50512 // Conversations: Message media size is too large
)

// media is a Media resource of the Media Content Service.
type media struct {
	sid, contentType, filename, author string
	data                               []byte
	created                            time.Time
	messageSID, conversationSID        string
}

// MediaFile is a file to upload as a Media resource (UploadMedia,
// SendAgentMedia). In the control API's JSON, Data is base64.
type MediaFile struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Data        []byte `json:"data"`
}

// MediaView is a Media resource as the control API shows it.
type MediaView struct {
	SID         string `json:"sid"`
	ContentType string `json:"content_type"`
	Filename    string `json:"filename,omitempty"`
	Size        int    `json:"size"`
	Author      string `json:"author"`
	// MessageSID and ConversationSID are set once a message carries it.
	MessageSID      string `json:"message_sid,omitempty"`
	ConversationSID string `json:"conversation_sid,omitempty"`
	// URL is where the control API serves the content, without
	// authentication (for the sandbox page).
	URL         string    `json:"url"`
	DateCreated time.Time `json:"date_created"`
}

// rawContent is a handler result written as is (media content).
type rawContent struct {
	contentType string
	data        []byte
}

// ChatServiceSID returns the SID (IS...) of the emulated Flex Chat
// Service, the default Conversation Service: the ChatServiceSid of Media
// Content Service URLs.
func (s *Server) ChatServiceSID() string { return s.chatServiceSID }

func mcsBase(serviceSID string) string { return "/v1/Services/" + serviceSID + "/Media" }

// temporaryURL returns a signed links.content_direct_temporary URL for m,
// valid for Options.MediaURLLifetime from now.
func (s *Server) temporaryURL(m *media) string {
	exp := s.now().Add(s.opts.MediaURLLifetime).Unix()
	return fmt.Sprintf("https://media.us1.twilio.com/%s?Expires=%d&Signature=%s&Key-Pair-Id=%s",
		m.sid, exp, s.mediaSignature(m.sid, exp), mediaKeyPairID)
}

func (s *Server) mediaSignature(sid string, expires int64) string {
	mac := hmac.New(sha256.New, s.mediaKey)
	_, _ = fmt.Fprintf(mac, "%s\n%d", sid, expires)
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// mediaJSON is the Media resource as the Media Content Service returns it.
// The caller holds s.mu.
func (s *Server) mediaJSON(m *media) map[string]any {
	u := mcsBase(s.chatServiceSID) + "/" + m.sid
	ts := m.created.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
	return map[string]any{
		"sid":                   m.sid,
		"account_sid":           s.opts.AccountSID,
		"service_sid":           s.chatServiceSID,
		"date_created":          ts,
		"date_upload_updated":   ts,
		"date_updated":          ts,
		"channel_sid":           nullable(m.conversationSID),
		"message_sid":           nullable(m.messageSID),
		"author":                m.author,
		"size":                  len(m.data),
		"content_type":          m.contentType,
		"filename":              nullable(m.filename),
		"category":              "media",
		"url":                   u,
		"is_multipart_upstream": false,
		"links": map[string]any{
			"content":                  u + "/Content",
			"content_direct_temporary": s.temporaryURL(m),
		},
	}
}

func (s *Server) mediaView(m *media) MediaView {
	return MediaView{
		SID: m.sid, ContentType: m.contentType, Filename: m.filename, Size: len(m.data), Author: m.author,
		MessageSID: m.messageSID, ConversationSID: m.conversationSID,
		URL: strings.TrimSuffix(ControlPrefix, "/") + "/media/" + m.sid + "/content", DateCreated: m.created,
	}
}

// messageMediaJSON is a message's media list: one object per Media
// resource (sid, content_type, filename, size, category), or nil.
func messageMediaJSON(list []*media) any {
	if len(list) == 0 {
		return nil
	}
	out := make([]map[string]any, 0, len(list))
	for _, m := range list {
		out = append(out, map[string]any{
			"sid": m.sid, "content_type": m.contentType, "filename": nullable(m.filename),
			"size": len(m.data), "category": "media",
		})
	}
	return out
}

// webhookMediaParam is onMessageAdded's Media parameter: a JSON string of
// the media objects with capitalized keys.
func webhookMediaParam(list []*media) string {
	out := make([]map[string]any, 0, len(list))
	for _, m := range list {
		out = append(out, map[string]any{
			"Sid": m.sid, "ContentType": m.contentType, "Filename": nullable(m.filename),
			"Size": len(m.data), "Category": "media",
		})
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// uploadedFile reads an upload body: the raw file with its Content-Type
// (and a filename in Content-Disposition), or multipart/form-data whose
// first file part is the file.
func uploadedFile(contentType, disposition string, body []byte) (MediaFile, error) {
	mt, params, _ := mime.ParseMediaType(contentType)
	if mt != "multipart/form-data" {
		f := MediaFile{ContentType: contentType, Data: body}
		if _, dp, err := mime.ParseMediaType(disposition); err == nil {
			f.Filename = dp["filename"]
		}
		return f, nil
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			return MediaFile{}, errors.New("the multipart body holds no file")
		}
		if p.FileName() == "" {
			continue
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return MediaFile{}, fmt.Errorf("read the file part: %w", err)
		}
		return MediaFile{Filename: p.FileName(), ContentType: p.Header.Get("Content-Type"), Data: data}, nil
	}
}

// checkMediaFile checks a file against the upload limit.
func checkMediaFile(f MediaFile, limit int64) *apiError {
	if int64(len(f.Data)) > limit {
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: codeMediaTooBig,
			Message: fmt.Sprintf("Media size %d exceeds the limit of %d bytes", len(f.Data), limit)}
	}
	if len(f.Data) == 0 {
		return errInvalid("Media content is empty")
	}
	return nil
}

// storeMedia stores an uploaded file. The caller holds s.mu.
func (s *Server) storeMedia(f MediaFile, author string) (*media, *apiError) {
	if e := checkMediaFile(f, s.opts.MaxMediaSize); e != nil {
		return nil, e
	}
	ct := f.ContentType
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt == "" {
		ct = http.DetectContentType(f.Data)
	}
	m := &media{
		sid: newSID(prefixMedia), contentType: ct, filename: f.Filename, author: author,
		data: bytes.Clone(f.Data), created: s.now(),
	}
	s.media[m.sid] = m
	return m, nil
}

// mediaService checks the ChatServiceSid of a Media Content Service URL.
func (s *Server) mediaService(c *call) *apiError {
	if c.param("ChatServiceSid") != s.chatServiceSID {
		return errNotFound(c.path())
	}
	return nil
}

// createMedia serves POST mcs /v1/Services/{ChatServiceSid}/Media: the
// body is the file, its Content-Type the file's type.
func (s *Server) createMedia(c *call) (int, any) {
	if e := s.mediaService(c); e != nil {
		return 0, e
	}
	f, err := uploadedFile(c.r.Header.Get("Content-Type"), c.r.Header.Get("Content-Disposition"), c.body)
	if err != nil {
		return 0, errInvalid("Invalid media upload: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, e := s.storeMedia(f, "system")
	if e != nil {
		return 0, e
	}
	return http.StatusCreated, s.mediaJSON(m)
}

func (s *Server) mediaFor(c *call) (*media, *apiError) {
	if e := s.mediaService(c); e != nil {
		return nil, e
	}
	m := s.media[c.param("Sid")]
	if m == nil {
		return nil, errNotFound(c.path())
	}
	return m, nil
}

// fetchMedia serves GET mcs /v1/Services/{ChatServiceSid}/Media/{Sid},
// with a fresh temporary URL.
func (s *Server) fetchMedia(c *call) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, e := s.mediaFor(c)
	if e != nil {
		return 0, e
	}
	return http.StatusOK, s.mediaJSON(m)
}

// fetchMediaContent serves GET mcs
// /v1/Services/{ChatServiceSid}/Media/{Sid}/Content: the file itself.
func (s *Server) fetchMediaContent(c *call) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, e := s.mediaFor(c)
	if e != nil {
		return 0, e
	}
	return http.StatusOK, rawContent{contentType: m.contentType, data: m.data}
}

// serveTemporaryMedia serves links.content_direct_temporary URLs
// (media.us1.twilio.com/{MediaSid}?Expires=&Signature=&Key-Pair-Id=)
// without authentication; an expired or tampered URL answers 403 as the
// CDN behind them does.
func (s *Server) serveTemporaryMedia(w http.ResponseWriter, r *http.Request) {
	sid := strings.Trim(r.URL.Path, "/")
	q := r.URL.Query()
	exp, err := strconv.ParseInt(q.Get("Expires"), 10, 64)
	s.mu.Lock()
	m := s.media[sid]
	s.mu.Unlock()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if m == nil || err != nil || q.Get("Key-Pair-Id") != mediaKeyPairID ||
		!hmac.Equal([]byte(q.Get("Signature")), []byte(s.mediaSignature(sid, exp))) || !s.now().Before(time.Unix(exp, 0)) {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access denied</Message></Error>`)
		return
	}
	writeContent(w, r, rawContent{contentType: m.contentType, data: m.data})
}

func writeContent(w http.ResponseWriter, r *http.Request, c rawContent) {
	h := w.Header()
	h.Set("Content-Type", c.contentType)
	h.Set("Content-Length", strconv.Itoa(len(c.data)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(c.data)
	}
}

// attachableMedia returns the Media resource a new message may carry: it
// must exist and not be on another message yet (else 400, code 50510).
// The caller holds s.mu.
func (s *Server) attachableMedia(sid string) (*media, *apiError) {
	m := s.media[sid]
	if m == nil || m.messageSID != "" {
		return nil, &apiError{Status: http.StatusBadRequest, Code: codeMediaInvalid,
			Message: fmt.Sprintf("Invalid message media SID %s: it must be uploaded to this service and not attached yet", sid)}
	}
	return m, nil
}

// UploadMedia uploads a file to the Media Content Service as a REST client
// would (author "system") and returns the new Media resource.
func (s *Server) UploadMedia(f MediaFile) (MediaView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, e := s.storeMedia(f, "system")
	if e != nil {
		return MediaView{}, fmt.Errorf("twilioemu: upload media: %w", e)
	}
	return s.mediaView(m), nil
}

// Media returns a Media resource and its content.
func (s *Server) Media(sid string) (MediaView, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.media[sid]
	if m == nil {
		return MediaView{}, nil, fmt.Errorf("media %s: %w", sid, ErrNotFound)
	}
	return s.mediaView(m), bytes.Clone(m.data), nil
}

// SendAgentMedia uploads files as the agent that accepted the task and
// posts one message carrying them all (body may be empty), firing
// onMessageAdded with Media as SendAgentMessage does.
func (s *Server) SendAgentMedia(taskSID, body string, files ...MediaFile) (MessageView, error) {
	if len(files) == 0 {
		return s.SendAgentMessage(taskSID, body)
	}
	return s.agentMessage(taskSID, body, nil, files)
}

// SendAgentMessageWithMedia posts a message as the agent that accepted the
// task, carrying Media resources uploaded before (UploadMedia, or POST
// /_emu/twilio/media); body may be empty when there is media.
func (s *Server) SendAgentMessageWithMedia(taskSID, body string, mediaSIDs ...string) (MessageView, error) {
	return s.agentMessage(taskSID, body, mediaSIDs, nil)
}

// ctlUploadMedia serves POST /_emu/twilio/media: the raw file with its
// Content-Type and a filename (?filename= or Content-Disposition), or
// multipart/form-data with one file part.
func (s *Server) ctlUploadMedia(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxMediaSize+1<<20))
	if err != nil {
		ctlError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("read body: %w", err))
		return
	}
	f, err := uploadedFile(r.Header.Get("Content-Type"), r.Header.Get("Content-Disposition"), body)
	if err != nil {
		ctlError(w, http.StatusBadRequest, err)
		return
	}
	if name := r.URL.Query().Get("filename"); name != "" {
		f.Filename = name
	}
	v, err := s.UploadMedia(f)
	if err != nil {
		status := http.StatusBadRequest
		var ae *apiError
		if errors.As(err, &ae) {
			status = ae.Status
		}
		ctlError(w, status, err)
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) ctlMedia(w http.ResponseWriter, r *http.Request) {
	v, _, err := s.Media(r.PathValue("sid"))
	if err != nil {
		ctlFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) ctlMediaContent(w http.ResponseWriter, r *http.Request) {
	v, data, err := s.Media(r.PathValue("sid"))
	if err != nil {
		ctlFail(w, err)
		return
	}
	writeContent(w, r, rawContent{contentType: v.ContentType, data: data})
}
