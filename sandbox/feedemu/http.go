package feedemu

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

// ServeHTTP serves the routes listed in the package documentation.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.routes.ServeHTTP(w, r)
}

func (s *Server) newRoutes() *http.ServeMux {
	p := s.prefix
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+p+"/{$}", s.serveIndex)
	mux.HandleFunc("GET "+p+"/{file}", s.serveDocument)
	mux.HandleFunc("GET "+p+"/{name}/items", s.serveItems)
	mux.HandleFunc("POST "+p+"/{name}/items", s.servePublish)
	mux.HandleFunc("GET "+p+"/{name}/items/{id}", s.serveItem)
	mux.HandleFunc("DELETE "+p+"/{name}/items/{id}", s.serveRemove)
	mux.HandleFunc("GET "+p+"/{name}/posts/{id}", s.servePost)
	mux.HandleFunc("GET "+p+"/{name}/images/{file}", s.serveImage)
	return mux
}

// feedInfo is one entry of the index.
type feedInfo struct {
	Name     string `json:"name"`
	Title    string `json:"title"`
	Items    int    `json:"items"`
	RSSURL   string `json:"rss_url"`
	JSONURL  string `json:"json_url"`
	ItemsURL string `json:"items_url"`
	SiteURL  string `json:"site_url"`
}

func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	names := make([]string, 0, len(s.feeds))
	for name := range s.feeds {
		names = append(names, name)
	}
	s.mu.Unlock()
	base := s.requestBase(r)
	out := []feedInfo{}
	slices.Sort(names)
	for _, name := range names {
		snap, err := s.snapshot(name)
		if err != nil {
			continue // removed meanwhile (feeds are never removed today)
		}
		out = append(out, feedInfo{
			Name: name, Title: snap.title, Items: len(snap.items),
			RSSURL: base + "/" + name + ".xml", JSONURL: base + "/" + name + ".json",
			ItemsURL: base + "/" + name + "/items", SiteURL: snap.site(base),
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"feeds": out})
}

// serveDocument serves /{name}.xml (RSS), /{name}.json (JSON Feed) and
// /{name} (the blog's home page).
func (s *Server) serveDocument(w http.ResponseWriter, r *http.Request) {
	file := r.PathValue("file")
	name, ext := file, ""
	if i := strings.LastIndexByte(file, '.'); i > 0 {
		name, ext = file[:i], file[i:]
	}
	snap, err := s.snapshot(name)
	if err != nil {
		writeError(w, err)
		return
	}
	base := s.requestBase(r)
	var (
		body  []byte
		ctype string
	)
	switch ext {
	case ".xml":
		body, err = renderRSS(snap, base)
		ctype = "application/rss+xml; charset=utf-8"
	case ".json":
		body, err = renderJSONFeed(snap, base)
		ctype = "application/feed+json; charset=utf-8"
	case "":
		body, err = renderHome(snap, base)
		ctype = "text/html; charset=utf-8"
		sandboxed(w)
	default:
		writeError(w, fmt.Errorf("feed %q has no %s document (try .xml or .json): %w", name, ext, ErrNoFeed))
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	serveBytes(w, r, body, ctype, snap.modified)
}

func (s *Server) serveItems(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	items, err := s.items(name, s.requestBase(r))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"feed": name, "items": items})
}

func (s *Server) serveItem(w http.ResponseWriter, r *http.Request) {
	it, err := s.findItem(r.PathValue("name"), r.PathValue("id"), s.requestBase(r))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, it)
}

func (s *Server) findItem(name, id, base string) (Item, error) {
	items, err := s.items(name, base)
	if err != nil {
		return Item{}, err
	}
	for _, it := range items {
		if it.ID == id {
			return it, nil
		}
	}
	return Item{}, fmt.Errorf("feed %q item %q: %w", name, id, ErrNoItem)
}

func (s *Server) servePublish(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := s.snapshot(name); err != nil {
		writeError(w, err)
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	var in NewItem
	err := dec.Decode(&in)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("more than one JSON value")
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{
				"error": fmt.Sprintf("the request body is larger than %d KB", maxBodyBytes>>10)})
		case errors.Is(err, io.EOF):
			writeJSON(w, http.StatusBadRequest, map[string]string{
				"error": `the body must be a JSON object such as {"title": "...", "html": "<p>...</p>"}`})
		default:
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the body is not a valid item: " + err.Error()})
		}
		return
	}
	it, snap, err := s.publish(name, in)
	if err != nil {
		writeError(w, err)
		return
	}
	base := s.requestBase(r)
	w.Header().Set("Location", base+"/"+name+"/items/"+it.id)
	writeJSON(w, http.StatusCreated, resolve(snap, it, base))
}

func (s *Server) serveRemove(w http.ResponseWriter, r *http.Request) {
	if err := s.Remove(r.PathValue("name"), r.PathValue("id")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) servePost(w http.ResponseWriter, r *http.Request) {
	name, id := r.PathValue("name"), r.PathValue("id")
	snap, err := s.snapshot(name)
	if err != nil {
		writeError(w, err)
		return
	}
	base := s.requestBase(r)
	for _, it := range snap.items {
		if it.id == id {
			body, err := renderPost(snap, resolve(snap, it, base), base)
			if err != nil {
				writeError(w, err)
				return
			}
			sandboxed(w)
			serveBytes(w, r, body, "text/html; charset=utf-8", snap.modified)
			return
		}
	}
	writeError(w, fmt.Errorf("feed %q item %q: %w", name, id, ErrNoItem))
}

// imageFile is the name of a generated picture.
var imageFile = regexp.MustCompile(`^([a-z0-9][a-z0-9-]{0,39})\.png$`)

func (s *Server) serveImage(w http.ResponseWriter, r *http.Request) {
	if _, err := s.snapshot(r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	m := imageFile.FindStringSubmatch(r.PathValue("file"))
	if m == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "images are named like banner-1.png (lower-case letters, digits, dashes)"})
		return
	}
	body := s.images.get(m[1])
	w.Header().Set("Cache-Control", "public, max-age=86400") // the same name always draws the same picture
	serveBytes(w, r, body, "image/png", time.Time{})
}

// sandboxed makes a page that shows posted HTML harmless: the browser runs
// no script in it and gives it an origin of its own.
func sandboxed(w http.ResponseWriter) {
	w.Header().Set("Content-Security-Policy",
		"sandbox; default-src 'none'; img-src 'self' data: http: https:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
}

// serveBytes answers with body, a strong ETag (a digest of body) and
// Last-Modified (when modified is set); http.ServeContent answers
// conditional requests (If-None-Match before If-Modified-Since) with 304.
func serveBytes(w http.ResponseWriter, r *http.Request, body []byte, ctype string, modified time.Time) {
	sum := sha256.Sum256(body)
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, "", modified, bytes.NewReader(body))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// writeError answers with the JSON error and the status err calls for.
func writeError(w http.ResponseWriter, err error) {
	var invalid *ValidationError
	switch {
	case errors.As(err, &invalid):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": invalid.Reason, "field": invalid.Field})
	case errors.Is(err, ErrNoFeed), errors.Is(err, ErrNoItem):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
	}
}
