package discordemu

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/gif"  // image sizes of GIF attachments
	_ "image/jpeg" // image sizes of JPEG attachments
	_ "image/png"  // image sizes of PNG attachments
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Upload limits and attachment URLs, as Discord documents them.
const (
	// DefaultMaxRequestSize is the largest request Discord accepts when a
	// message is sent: 25 MiB, files included.
	DefaultMaxRequestSize = 25 << 20
	// DefaultMaxFileSize is the default upload limit of each file: 10 MiB
	// ("the default limit is 10 MiB for all users"; boosted servers and
	// Nitro raise it). Interactions carry it as attachment_size_limit.
	DefaultMaxFileSize = 10 << 20
	// MaxFilesPerMessage is how many files one message can carry.
	MaxFilesPerMessage = 10
	// DefaultAttachmentURLLifetime is how long a signed attachment URL
	// stays valid.
	DefaultAttachmentURLLifetime = 24 * time.Hour
	// DefaultCDNURL and DefaultMediaProxyURL are the hosts of attachment
	// url and proxy_url. Transport sends both to the emulator.
	DefaultCDNURL        = "https://cdn.discordapp.com"
	DefaultMediaProxyURL = "https://media.discordapp.net"
)

// cdnGone is what Discord's CDN answers (404) for an expired, badly signed
// or unknown attachment URL.
const cdnGone = "This content is no longer available."

// ErrFileTooLarge is returned by SendDMWithFiles for a file larger than
// Options.MaxFileSize (the REST API answers 413 with code 40005).
var ErrFileTooLarge = errors.New("file is larger than the upload limit")

// File is a file a member attaches to a direct message (SendDMWithFiles).
// In the control API's JSON, Data is base64.
type File struct {
	// Name is the file name, for example "screenshot.png".
	Name string `json:"filename"`
	// ContentType is the file's media type; empty guesses it from the
	// name and the content.
	ContentType string `json:"content_type,omitempty"`
	// Description is the alt text.
	Description string `json:"description,omitempty"`
	Data        []byte `json:"data"`
}

// Attachment is Discord's attachment object. URL and ProxyURL are signed
// CDN links that expire (see Options.AttachmentURLLifetime); the emulator
// serves them at /attachments/{channel.id}/{attachment.id}/{filename}.
type Attachment struct {
	ID          string `json:"id"`
	Filename    string `json:"filename"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Size        int    `json:"size"`
	URL         string `json:"url"`
	ProxyURL    string `json:"proxy_url"`
	// Width and Height are set for images the emulator can measure (PNG,
	// JPEG, GIF).
	Width     *int `json:"width,omitempty"`
	Height    *int `json:"height,omitempty"`
	Ephemeral bool `json:"ephemeral,omitempty"`
	Flags     int  `json:"flags,omitempty"`
}

// attachmentFlagSpoiler is IS_SPOILER (1 << 3).
const attachmentFlagSpoiler = 1 << 3

// upload is one file of a multipart request.
type upload struct {
	// index is n of files[n] (the snowflake placeholder that attachments
	// metadata refers to).
	index       string
	filename    string
	contentType string
	data        []byte
}

// storedFile is an attachment's content, kept for the CDN.
type storedFile struct {
	channelID   string
	filename    string
	contentType string
	data        []byte
}

var filesPart = regexp.MustCompile(`^files\[(\d+)\]$`)

func mediaTypeOf(contentType string) string {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt
}

func isMultipart(r *http.Request) bool {
	return mediaTypeOf(r.Header.Get("Content-Type")) == "multipart/form-data"
}

// readForm splits a multipart/form-data message body into its JSON payload
// (the payload_json part, or else the plain form fields as a JSON object)
// and its files. Parts that carry a file under a name other than files[n]
// are kept as files that no attachments entry can refer to; odd names are
// reported by formProblems.
func readForm(contentType string, body []byte) ([]byte, []upload, error) {
	bad := errorf(http.StatusBadRequest, codeInvalidFormBody, "Invalid Form Body")
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil || params["boundary"] == "" {
		return nil, nil, bad
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var payload []byte
	fields := map[string]string{}
	var ups []upload
	seen := map[string]bool{}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, bad
		}
		name := p.FormName()
		data, err := io.ReadAll(p)
		if err != nil {
			return nil, nil, bad
		}
		m := filesPart.FindStringSubmatch(name)
		switch {
		case name == "payload_json":
			payload = data
		case m != nil || p.FileName() != "":
			if seen[name] {
				return nil, nil, formError(name, "BASE_TYPE_BAD", "Duplicate file parameter.")
			}
			seen[name] = true
			u := upload{filename: p.FileName(), contentType: p.Header.Get("Content-Type"), data: data}
			if m != nil {
				u.index = m[1]
				if u.filename == "" {
					return nil, nil, formError(name, "BASE_TYPE_REQUIRED", "A file must have a filename.")
				}
			}
			ups = append(ups, u)
		default:
			fields[name] = string(data)
		}
	}
	if payload == nil {
		payload = formFieldsJSON(fields)
	}
	return payload, ups, nil
}

// formFieldsJSON turns plain form fields (a multipart body without
// payload_json) into the equivalent JSON body.
func formFieldsJSON(fields map[string]string) []byte {
	obj := map[string]any{}
	for k, v := range fields {
		switch k {
		case "content", "nonce":
			obj[k] = v
		case "tts", "enforce_nonce":
			obj[k] = v == "true"
		default:
			if json.Valid([]byte(v)) {
				obj[k] = json.RawMessage(v)
			} else {
				obj[k] = v
			}
		}
	}
	return mustJSON(obj)
}

// formProblems lists what a multipart body does against the docs: files
// under names other than files[n].
func formProblems(contentType string, body []byte) []string {
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return []string{"malformed multipart Content-Type"}
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var out []string
	for {
		p, err := mr.NextPart()
		if err != nil {
			return out
		}
		if name := p.FormName(); p.FileName() != "" && !filesPart.MatchString(name) {
			out = append(out, fmt.Sprintf("file part %q is not named files[n]", name))
		}
	}
}

// messagePayload returns the JSON body of a message request and its files:
// the body itself for application/json, or the parts of a
// multipart/form-data body. Files over the size limit answer 413 (40005),
// more than ten files 50035.
func (s *Server) messagePayload(r *http.Request, body []byte) ([]byte, []upload, error) {
	if !isMultipart(r) {
		if mediaTypeOf(r.Header.Get("Content-Type")) != "application/json" {
			return nil, nil, errorf(http.StatusBadRequest, codeInvalidFormBody, "Invalid Form Body")
		}
		return body, nil, nil
	}
	payload, ups, err := readForm(r.Header.Get("Content-Type"), body)
	if err != nil {
		return nil, nil, err
	}
	if err := s.checkUploads(ups); err != nil {
		return nil, nil, err
	}
	return payload, ups, nil
}

// checkUploads applies the per-file size limit and the file count limit.
func (s *Server) checkUploads(ups []upload) error {
	for _, u := range ups {
		if int64(len(u.data)) > s.opts.MaxFileSize {
			return errorf(http.StatusRequestEntityTooLarge, codeRequestTooLarge, "Request entity too large")
		}
	}
	if len(ups) > MaxFilesPerMessage {
		return formError("attachments", "BASE_TYPE_MAX_LENGTH", fmt.Sprintf("Must be %d or fewer in length.", MaxFilesPerMessage))
	}
	return nil
}

// decodeMessage decodes a message request (JSON or multipart) into v and
// returns its files.
func (s *Server) decodeMessage(r *http.Request, body []byte, v any) ([]upload, error) {
	payload, ups, err := s.messagePayload(r, body)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return nil, errorf(http.StatusBadRequest, codeInvalidJSON, "The request body contains invalid JSON.")
	}
	return ups, nil
}

// attachmentID returns an attachments entry's id (a snowflake, or the n of
// files[n], as a string or a number).
func attachmentID(v any) string {
	switch id := v.(type) {
	case string:
		return id
	case json.Number:
		return id.String()
	case float64:
		return strconv.FormatFloat(id, 'f', -1, 64)
	}
	return ""
}

// attachLocked works out a message's attachments from its request:
// existing attachments (of an edited message) and the new files. Without
// attachments metadata (meta nil) every existing attachment stays and every
// file is added. With it, the message has exactly the entries it lists, in
// its order: existing attachments by id, new files by the n of files[n],
// with their filename, title, description and is_spoiler. Files are stored
// for the CDN only when the whole request is valid.
func (s *Server) attachLocked(channelID string, meta []any, ups []upload, existing []Attachment, ephemeral bool) ([]Attachment, error) {
	type pick struct {
		keep *Attachment
		up   *upload
		over map[string]any
	}
	var picks []pick
	if meta == nil {
		for i := range existing {
			picks = append(picks, pick{keep: &existing[i]})
		}
		for i := range ups {
			picks = append(picks, pick{up: &ups[i]})
		}
	} else {
		byIndex := map[string]*upload{}
		for i := range ups {
			if ups[i].index != "" {
				byIndex[ups[i].index] = &ups[i]
			}
		}
		for i, entry := range meta {
			m, _ := entry.(map[string]any)
			id := attachmentID(m["id"])
			p := pick{over: m}
			for j := range existing {
				if existing[j].ID == id {
					p.keep = &existing[j]
				}
			}
			if p.keep == nil {
				p.up = byIndex[id]
			}
			if p.keep == nil && p.up == nil {
				return nil, formErrorAt([]string{"attachments", strconv.Itoa(i), "id"}, "ATTACHMENT_NOT_FOUND", "Unknown attachment.")
			}
			picks = append(picks, p)
		}
	}
	if len(picks) > MaxFilesPerMessage {
		return nil, formError("attachments", "BASE_TYPE_MAX_LENGTH", fmt.Sprintf("Must be %d or fewer in length.", MaxFilesPerMessage))
	}
	now := s.now()
	out := make([]Attachment, 0, len(picks))
	for _, p := range picks {
		var a Attachment
		if p.keep != nil {
			a = *p.keep
		} else {
			a = s.newAttachmentLocked(channelID, p.up, p.over)
		}
		if p.over != nil {
			if d, isString := p.over["description"].(string); isString {
				a.Description = d
			}
			if p.over["is_spoiler"] == true {
				a.Flags |= attachmentFlagSpoiler
			}
		}
		a.Ephemeral = ephemeral
		s.signLocked(&a, now)
		out = append(out, a)
	}
	return out, nil
}

// newAttachmentLocked stores an uploaded file and describes it. over is
// its attachments entry, if any (filename and title overrides).
func (s *Server) newAttachmentLocked(channelID string, u *upload, over map[string]any) Attachment {
	name := u.filename
	if n, isString := over["filename"].(string); isString && n != "" {
		name = n
	}
	name = attachmentFilename(name)
	ct := attachmentContentType(name, u.contentType, u.data)
	a := Attachment{ID: s.ids.next(), Filename: name, ContentType: ct, Size: len(u.data)}
	if t, isString := over["title"].(string); isString {
		a.Title = t
	}
	if strings.HasPrefix(ct, "image/") {
		if cfg, _, err := image.DecodeConfig(bytes.NewReader(u.data)); err == nil {
			w, h := cfg.Width, cfg.Height
			a.Width, a.Height = &w, &h
		}
	}
	s.files[a.ID] = &storedFile{channelID: channelID, filename: name, contentType: ct, data: u.data}
	return a
}

// attachmentFilename is the name Discord keeps for an uploaded file: the
// last path element, with spaces and characters unsafe in a URL path or a
// file name replaced by underscores.
func attachmentFilename(name string) string {
	name = path.Base(strings.ReplaceAll(name, `\`, "/"))
	name = strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f || strings.ContainsRune(`/?#%"<>|*:`, r) {
			return '_'
		}
		return r
	}, name)
	if name == "" || name == "." || name == "_" {
		return "unknown"
	}
	return name
}

// attachmentContentType is an attachment's media type: from its file
// extension, else the type it was uploaded with, else sniffed.
func attachmentContentType(filename, declared string, data []byte) string {
	if t := mime.TypeByExtension(strings.ToLower(path.Ext(filename))); t != "" {
		return t
	}
	if mt := mediaTypeOf(declared); mt != "" && mt != "application/octet-stream" {
		return declared
	}
	return http.DetectContentType(data)
}

// cdnMAC is the hm parameter of an attachment URL.
func (s *Server) cdnMAC(channelID, id, filename string, ex, is int64) string {
	mac := hmac.New(sha256.New, s.cdnKey)
	_, _ = fmt.Fprintf(mac, "%s/%s/%s\n%x\n%x", channelID, id, filename, ex, is)
	return hex.EncodeToString(mac.Sum(nil))
}

// signLocked sets an attachment's url and proxy_url, signed at issued.
func (s *Server) signLocked(a *Attachment, issued time.Time) {
	f := s.files[a.ID]
	if f == nil {
		return
	}
	is := issued.Unix()
	ex := issued.Add(s.opts.AttachmentURLLifetime).Unix()
	rel := "/attachments/" + f.channelID + "/" + a.ID + "/" + url.PathEscape(a.Filename)
	q := fmt.Sprintf("?ex=%x&is=%x&hm=%s&", ex, is, s.cdnMAC(f.channelID, a.ID, a.Filename, ex, is))
	cdn, proxy := DefaultCDNURL, DefaultMediaProxyURL
	if s.opts.CDNURL != "" {
		cdn = strings.TrimSuffix(s.opts.CDNURL, "/")
		proxy = cdn
	}
	a.URL = cdn + rel + q
	a.ProxyURL = proxy + rel + q
}

// freshLocked returns the message with its attachment URLs signed anew, as
// Discord returns them when a message is fetched.
func (s *Server) freshLocked(m Message) Message {
	if len(m.Attachments) == 0 {
		return m
	}
	now := s.now()
	atts := make([]Attachment, len(m.Attachments))
	copy(atts, m.Attachments)
	for i := range atts {
		s.signLocked(&atts[i], now)
	}
	m.Attachments = atts
	return m
}

// AttachmentData returns the content and media type of an attachment, for
// tests that check what was uploaded without going through the CDN.
func (s *Server) AttachmentData(attachmentID string) ([]byte, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.files[attachmentID]
	if f == nil {
		return nil, "", false
	}
	return bytes.Clone(f.data), f.contentType, true
}

// serveCDN serves an attachment URL: GET
// /attachments/{channel.id}/{attachment.id}/{filename}?ex=&is=&hm= (on
// cdn.discordapp.com and media.discordapp.net through Transport). An
// unknown file, a bad signature or an expired URL answers 404, as
// Discord's CDN does.
func (s *Server) serveCDN(w http.ResponseWriter, r *http.Request) {
	ch, id, name := r.PathValue("channel_id"), r.PathValue("attachment_id"), r.PathValue("filename")
	q := r.URL.Query()
	ex, errEx := strconv.ParseInt(q.Get("ex"), 16, 64)
	is, errIs := strconv.ParseInt(q.Get("is"), 16, 64)
	s.mu.Lock()
	f := s.files[id]
	s.mu.Unlock()
	valid := f != nil && f.channelID == ch && f.filename == name && errEx == nil && errIs == nil &&
		hmac.Equal([]byte(q.Get("hm")), []byte(s.cdnMAC(ch, id, name, ex, is))) &&
		s.now().Before(time.Unix(ex, 0))
	if !valid {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, cdnGone)
		return
	}
	writeFile(w, r, f)
}

// ctlAttachment serves an attachment to the sandbox page without a
// signature: the page plays the Discord app, which refreshes its links.
func (s *Server) ctlAttachment(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	f := s.files[r.PathValue("attachment_id")]
	s.mu.Unlock()
	if f == nil || f.channelID != r.PathValue("channel_id") || f.filename != r.PathValue("filename") {
		ctlError(w, http.StatusNotFound, errors.New("unknown attachment"))
		return
	}
	writeFile(w, r, f)
}

func writeFile(w http.ResponseWriter, r *http.Request, f *storedFile) {
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Content-Length", strconv.Itoa(len(f.data)))
	h.Set("Cache-Control", "private, max-age=3600")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(f.data)
	}
}

// SendDMWithFiles acts as member userID sending a direct message to the bot
// with files attached (content may then be empty). Each file may be at most
// Options.MaxFileSize (else ErrFileTooLarge), and a message carries at most
// MaxFilesPerMessage files. The bot receives MESSAGE_CREATE with the
// attachments: signed CDN URLs, size and content_type.
func (s *Server) SendDMWithFiles(userID, content string, files ...File) (Record, error) {
	if content == "" && len(files) == 0 {
		return Record{}, fmt.Errorf("send DM as %s: content or a file is required", userID)
	}
	if len(files) > MaxFilesPerMessage {
		return Record{}, fmt.Errorf("send DM as %s: %d files, at most %d", userID, len(files), MaxFilesPerMessage)
	}
	ups := make([]upload, 0, len(files))
	meta := make([]any, 0, len(files))
	for i, f := range files {
		if int64(len(f.Data)) > s.opts.MaxFileSize {
			return Record{}, fmt.Errorf("send DM as %s: %s is %d bytes, over %d: %w", userID, f.Name, len(f.Data), s.opts.MaxFileSize, ErrFileTooLarge)
		}
		if f.Name == "" {
			return Record{}, fmt.Errorf("send DM as %s: file %d has no name", userID, i)
		}
		n := strconv.Itoa(i)
		ups = append(ups, upload{index: n, filename: f.Name, contentType: f.ContentType, data: f.Data})
		entry := map[string]any{"id": n}
		if f.Description != "" {
			entry["description"] = f.Description
		}
		meta = append(meta, entry)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, found := s.members[userID]
	if !found {
		return Record{}, fmt.Errorf("send DM as %s: %w", userID, ErrUnknownMember)
	}
	ch := s.dmChannelLocked(userID)
	msg := s.newMessageLocked(ch.ID, m.user(), &messageBody{Content: &content})
	if len(files) > 0 {
		atts, err := s.attachLocked(ch.ID, meta, ups, nil, false)
		if err != nil {
			return Record{}, fmt.Errorf("send DM as %s: %w", userID, err)
		}
		msg.Attachments = atts
	}
	rec := &Record{Message: msg}
	s.addRecordLocked(rec)
	return *rec, nil
}

// dmInput is the control API's body for a member's DM: JSON, or
// multipart/form-data with a content field and file parts.
type dmInput struct {
	Content string `json:"content"`
	Files   []File `json:"files"`
}

// readDMInput decodes the control API's DM body.
func (s *Server) readDMInput(w http.ResponseWriter, r *http.Request) (dmInput, bool) {
	var in dmInput
	limit := s.opts.MaxRequestSize*4/3 + 1<<20 // base64 in JSON
	if !isMultipart(r) {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
		if err := dec.Decode(&in); err != nil {
			ctlError(w, http.StatusBadRequest, fmt.Errorf("decode body: %w", err))
			return in, false
		}
		return in, true
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		ctlError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("read body: %w", err))
		return in, false
	}
	payload, ups, err := readForm(r.Header.Get("Content-Type"), body)
	if err != nil {
		ctlError(w, http.StatusBadRequest, fmt.Errorf("decode multipart body: %w", err))
		return in, false
	}
	var fields struct {
		Content string `json:"content"`
	}
	_ = json.Unmarshal(payload, &fields)
	in.Content = fields.Content
	for _, u := range ups {
		in.Files = append(in.Files, File{Name: u.filename, ContentType: u.contentType, Data: u.data})
	}
	return in, true
}
