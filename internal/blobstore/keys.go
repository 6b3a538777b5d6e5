package blobstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxKeyLen is the longest key a store accepts, in bytes (S3's limit).
const MaxKeyLen = 1024

// DefaultContentType is what Get reports for bytes stored without a content type.
const DefaultContentType = "application/octet-stream"

// ValidKey reports why key cannot name a blob, or nil. A key is one or more slash-separated
// segments, none of them empty, "." or "..", without backslashes or control characters: a key can
// never reach outside the store's directory or bucket prefix.
func ValidKey(key string) error {
	if key == "" {
		return errors.New("blobstore: empty key")
	}
	if strings.HasSuffix(key, "/") {
		return fmt.Errorf("blobstore: key %q ends with /", key)
	}
	return validPath(key)
}

// ValidPrefix reports why prefix cannot be listed, or nil. The empty prefix (everything) is valid;
// a prefix may end with "/" or in the middle of a segment.
func ValidPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return validPath(strings.TrimSuffix(prefix, "/"))
}

func validPath(p string) error {
	switch {
	case len(p) > MaxKeyLen:
		return fmt.Errorf("blobstore: key %.40q… is longer than %d bytes", p, MaxKeyLen)
	case !utf8.ValidString(p):
		return fmt.Errorf("blobstore: key %q is not UTF-8", p)
	case strings.ContainsAny(p, "\\"):
		return fmt.Errorf("blobstore: key %q has a backslash", p)
	case strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("blobstore: key %q has a control character", p)
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("blobstore: key %q has an empty, . or .. segment", p)
		}
	}
	return nil
}

// ObjectInfo is a key and the size of what it holds.
type ObjectInfo struct {
	Key  string
	Size int64
}

// InfoLister is a Store that can list sizes without reading the blobs. Dir, S3 and Memory are.
type InfoLister interface {
	ListInfo(ctx context.Context, prefix string) ([]ObjectInfo, error)
}

// ListInfo lists the keys under prefix with their sizes, sorted by key. Stores that are not
// InfoListers are read blob by blob.
func ListInfo(ctx context.Context, s Store, prefix string) ([]ObjectInfo, error) {
	if il, ok := s.(InfoLister); ok {
		return il.ListInfo(ctx, prefix)
	}
	keys, err := s.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]ObjectInfo, 0, len(keys))
	for _, k := range keys {
		data, _, err := s.Get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ObjectInfo{Key: k, Size: int64(len(data))})
	}
	return out, nil
}

// DeletePrefix deletes every blob under prefix and returns the keys it deleted, sorted. On an
// error it goes on with the other keys and returns what it did delete with the errors joined.
// The empty prefix is refused: it would empty the store.
func DeletePrefix(ctx context.Context, s Store, prefix string) (deleted []string, err error) {
	if prefix == "" {
		return nil, errors.New("blobstore: refusing to delete the empty prefix (everything)")
	}
	if err := ValidPrefix(prefix); err != nil {
		return nil, err
	}
	keys, err := s.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		if err := s.Delete(ctx, k); err != nil {
			errs = append(errs, fmt.Errorf("delete %s: %w", k, err))
			continue
		}
		deleted = append(deleted, k)
	}
	slices.Sort(deleted)
	return deleted, errors.Join(errs...)
}

func orDefaultType(contentType string) string {
	if contentType == "" {
		return DefaultContentType
	}
	return contentType
}

// keysOf is the keys of a ListInfo answer, for the stores' List.
func keysOf(infos []ObjectInfo, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(infos))
	for i, o := range infos {
		keys[i] = o.Key
	}
	return keys, nil
}
