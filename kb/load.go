package kb

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// ErrNoArticles is returned when a source yields no usable article.
var ErrNoArticles = errors.New("no articles")

// LoadDir loads every Markdown article (*.md) under dir. See LoadFS.
func LoadDir(dir string, log *slog.Logger) ([]Article, []error, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, nil, fmt.Errorf("load knowledge base: %w", err)
	}
	arts, warns, err := loadFS(os.DirFS(dir), dir, log)
	if err != nil {
		return nil, warns, fmt.Errorf("load knowledge base from %s: %w", dir, err)
	}
	return arts, warns, nil
}

// LoadFS loads every Markdown article (*.md) in fsys. Each file starts with
// a front matter block between "---" lines holding "key: value" pairs:
//
//	---
//	title: How do I delete my account?
//	url: https://help.example.com/account/delete
//	lang: en
//	tags: [account, privacy]
//	---
//	Article body in Markdown.
//
// title and lang are required. An article's ID is its path without the
// ".md" extension. A malformed file, or one whose ID repeats, is skipped:
// the returned warnings name each skipped file and are also logged at warn
// level on log (if not nil). The error is non-nil only when fsys cannot be
// walked.
func LoadFS(fsys fs.FS, log *slog.Logger) ([]Article, []error, error) {
	return loadFS(fsys, "", log)
}

// loadFS is LoadFS; warnings name files as root joined with their path.
func loadFS(fsys fs.FS, root string, log *slog.Logger) ([]Article, []error, error) {
	var (
		arts  []Article
		warns []error
		seen  = make(map[string]bool)
	)
	warn := func(err error) {
		warns = append(warns, err)
		if log != nil {
			log.Warn("skipping knowledge-base article", "error", err)
		}
	}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.EqualFold(path.Ext(p), ".md") || strings.EqualFold(path.Base(p), "README.md") {
			return nil
		}
		name := filepath.Join(root, filepath.FromSlash(p))
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			warn(fmt.Errorf("%s: %w", name, err))
			return nil
		}
		a, err := ParseMarkdown(data)
		if err != nil {
			warn(fmt.Errorf("%s: %w", name, err))
			return nil
		}
		a.ID = strings.TrimSuffix(p, path.Ext(p))
		if seen[a.ID] {
			warn(fmt.Errorf("%s: duplicate article id %q", name, a.ID))
			return nil
		}
		seen[a.ID] = true
		arts = append(arts, a)
		return nil
	})
	if err != nil {
		return nil, warns, err
	}
	sort.Slice(arts, func(i, j int) bool { return arts[i].ID < arts[j].ID })
	return arts, warns, nil
}

// ParseMarkdown parses one Markdown article with front matter (see LoadFS).
// The returned article has no ID.
func ParseMarkdown(data []byte) (Article, error) {
	var a Article
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	if !strings.HasPrefix(text, "---\n") {
		return a, errors.New("missing front matter (the file must start with a --- line)")
	}
	rest := text[len("---\n"):]
	end := strings.Index(rest, "\n---")
	if end < 0 {
		return a, errors.New("unterminated front matter (no closing --- line)")
	}
	front, body := rest[:end], rest[end+len("\n---"):]
	if i := strings.IndexByte(body, '\n'); i >= 0 {
		if strings.TrimSpace(body[:i]) != "" {
			return a, errors.New("unexpected text after the closing --- line")
		}
		body = body[i+1:]
	} else {
		body = ""
	}
	for n, line := range strings.Split(front, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			return a, fmt.Errorf("front matter line %d: want key: value, got %q", n+2, line)
		}
		key, val = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(val)
		switch key {
		case "title":
			a.Title = unquote(val)
		case "url":
			a.URL = unquote(val)
		case "lang":
			a.Lang = unquote(val)
		case "tags":
			a.Tags = parseList(val)
		default:
			// Unknown keys (author, updated, ...) are allowed and ignored.
		}
	}
	a.Body = strings.TrimSpace(body)
	switch {
	case a.Title == "":
		return a, errors.New("front matter has no title")
	case a.Lang == "":
		return a, errors.New("front matter has no lang")
	case a.Body == "":
		return a, errors.New("article has no body")
	}
	return a, nil
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		return s[1 : len(s)-1]
	}
	return s
}

// parseList accepts "[a, b]" and "a, b".
func parseList(s string) []string {
	s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "["), "]")
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = unquote(strings.TrimSpace(v)); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// LoadJSONL reads a corpus with one JSON article per line, in the format
// {"id", "lang", "title", "body"} (url and tags are optional). Blank lines
// are ignored; a malformed line or an article without id or lang is an error
// naming the line.
func LoadJSONL(r io.Reader) ([]Article, error) {
	return DecodeJSONL(r, "corpus", func(a Article) error {
		if a.ID == "" || a.Lang == "" {
			return errors.New("article needs an id and a lang")
		}
		return nil
	})
}

// DecodeJSONL reads one JSON value of type T a line, skipping blank lines; check rejects a value.
// Errors name the line. what names the input in read errors ("corpus", "queries").
func DecodeJSONL[T any](r io.Reader, what string, check func(T) error) ([]T, error) {
	var out []T
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(line, &v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if err := check(v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return out, nil
}

// LoadJSONLFile is LoadJSONL on the named file.
func LoadJSONLFile(name string) ([]Article, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("load corpus: %w", err)
	}
	defer f.Close()
	arts, err := LoadJSONL(f)
	if err != nil {
		return nil, fmt.Errorf("load corpus %s: %w", name, err)
	}
	return arts, nil
}
