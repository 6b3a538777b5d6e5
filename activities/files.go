package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/flexcord/flexcord/internal/blobstore"
	"github.com/flexcord/flexcord/internal/twilioclient"
)

// File is an attachment on its way from one side to the other. Where it comes from is either a
// Discord CDN link (URL) or a file of Twilio's Media Content Service (MediaSID); flexcord keeps
// its own copy under BlobKey, so a retry after the link expired still has it.
type File struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type,omitempty"`
	Size        int64  `json:"size,omitempty"`
	URL         string `json:"url,omitempty"`
	MediaSID    string `json:"media_sid,omitempty"`
	ServiceSID  string `json:"service_sid,omitempty"`
	BlobKey     string `json:"blob_key,omitempty"`
}

// DefaultMaxFileBytes is the default cap on one attachment (FLEXCORD_MAX_ATTACHMENT_BYTES).
const DefaultMaxFileBytes = 20 << 20

// Files fetches attachments from where they come from and keeps a copy of each in the blob
// store. The Discord and Flex activities share one.
type Files struct {
	Store blobstore.Store
	// CDN downloads Discord attachments; it should go through the Discord transport.
	CDN *http.Client
	// Media is Twilio's Media Content Service.
	Media *twilioclient.Media
	// MaxBytes caps one file (default DefaultMaxFileBytes).
	MaxBytes int64
}

// errFileUnavailable is a file that cannot be fetched (too large, its link expired and no copy
// was kept, not found): the delivery goes on with a note in its place.
type errFileUnavailable struct{ reason string }

func (e *errFileUnavailable) Error() string { return e.reason }

func (f *Files) maxBytes() int64 {
	if f == nil || f.MaxBytes <= 0 {
		return DefaultMaxFileBytes
	}
	return f.MaxBytes
}

// load returns the file's bytes and content type: flexcord's copy if it has one, else fetched
// from its source and kept. A file that cannot be had is an *errFileUnavailable; a source that
// fails for a while is an ordinary error, retried with the activity.
func (f *Files) load(ctx context.Context, file File) ([]byte, string, error) {
	if f == nil {
		return nil, "", &errFileUnavailable{"this worker cannot fetch attachments"}
	}
	if file.Size > f.maxBytes() {
		return nil, "", &errFileUnavailable{fmt.Sprintf("it is larger than %s", FormatBytes(f.maxBytes()))}
	}
	if f.Store != nil && file.BlobKey != "" {
		data, ct, err := f.Store.Get(ctx, file.BlobKey)
		if err == nil {
			return data, orType(ct, file.ContentType), nil
		}
		if !errors.Is(err, blobstore.ErrNotFound) {
			return nil, "", fmt.Errorf("read the copy of %s: %w", file.Name, err)
		}
	}
	var data []byte
	ct := file.ContentType
	var err error
	switch {
	case file.URL != "":
		data, ct, err = f.download(ctx, file)
	case file.MediaSID != "" && f.Media != nil:
		var res twilioclient.MediaResource
		res, data, err = f.Media.Fetch(ctx, file.ServiceSID, file.MediaSID, f.maxBytes())
		ct = orType(res.ContentType, ct)
		var me *twilioclient.MediaError
		if errors.As(err, &me) && me.Status/100 == 4 && me.Status != http.StatusTooManyRequests {
			return nil, "", &errFileUnavailable{mediaReason(me.Status, f.maxBytes())}
		}
	default:
		return nil, "", &errFileUnavailable{"this worker cannot fetch it"}
	}
	if err != nil {
		return nil, "", err
	}
	if f.Store != nil && file.BlobKey != "" {
		if err := f.Store.Put(ctx, file.BlobKey, data, ct); err != nil {
			return nil, "", fmt.Errorf("keep a copy of %s: %w", file.Name, err)
		}
	}
	return data, ct, nil
}

// download fetches a Discord attachment from its CDN link, at most MaxBytes.
func (f *Files) download(ctx context.Context, file File) ([]byte, string, error) {
	hc := f.CDN
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, file.URL, nil)
	if err != nil {
		return nil, "", &errFileUnavailable{"its link is not valid"}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("download %s: %w", file.Name, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusForbidden:
		return nil, "", &errFileUnavailable{"its link has expired"}
	case resp.StatusCode/100 != 2:
		return nil, "", fmt.Errorf("download %s: HTTP %d", file.Name, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes()+1))
	if err != nil {
		return nil, "", fmt.Errorf("download %s: %w", file.Name, err)
	}
	if int64(len(data)) > f.maxBytes() {
		return nil, "", &errFileUnavailable{fmt.Sprintf("it is larger than %s", FormatBytes(f.maxBytes()))}
	}
	return data, orType(resp.Header.Get("Content-Type"), file.ContentType), nil
}

func mediaReason(status int, limit int64) string {
	switch status {
	case http.StatusRequestEntityTooLarge:
		return "it is larger than " + FormatBytes(limit)
	case http.StatusNotFound:
		return "Twilio no longer has it"
	}
	return fmt.Sprintf("Twilio refused it (HTTP %d)", status)
}

func orType(ct, fallback string) string {
	if ct = strings.TrimSpace(ct); ct != "" {
		return ct
	}
	if fallback != "" {
		return fallback
	}
	return "application/octet-stream"
}

// FormatBytes writes a size for people: "512 B", "3.4 KB", "20 MB".
func FormatBytes(n int64) string {
	const unit = 1 << 10
	switch {
	case n < unit:
		return fmt.Sprintf("%d B", n)
	case n < unit*unit:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/unit), ".0") + " KB"
	default:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/(unit*unit)), ".0") + " MB"
	}
}

// fileNote is what the other side reads in place of a file that could not be passed on.
func fileNote(name, reason string) string {
	return fmt.Sprintf("[attachment %s could not be passed on: %s]", name, reason)
}
