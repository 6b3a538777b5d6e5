package blobstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// DefaultDir is where Dir keeps blobs when FLEXCORD_BLOB_DIR is not set.
const DefaultDir = "./data/blobs"

// Dir is a Store in a local directory. A blob's bytes are the file data/<key> under the directory,
// its content type the file types/<key>; both are written to tmp/ first and renamed into place, so
// a reader sees the old blob or the new one, never a part. Directories left empty by Delete are
// removed, so nothing of an erased member remains, not even a directory named after them.
//
// Keys that are prefixes of other keys' paths ("a/b" and "a/b/c") cannot both be stored: a
// file system has no file that is also a directory. flexcord's keys never do that.
type Dir struct {
	root string
}

var (
	_ Store      = (*Dir)(nil)
	_ InfoLister = (*Dir)(nil)
)

// NewDir returns a store in root. The directory is created by the first Put; reading a store
// whose directory does not exist finds nothing.
func NewDir(root string) (*Dir, error) {
	if root == "" {
		return nil, errors.New("blobstore: empty directory")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	return &Dir{root: abs}, nil
}

// Root is the store's directory, absolute.
func (d *Dir) Root() string { return d.root }

func (d *Dir) dataRoot() string  { return filepath.Join(d.root, "data") }
func (d *Dir) typesRoot() string { return filepath.Join(d.root, "types") }
func (d *Dir) tmpRoot() string   { return filepath.Join(d.root, "tmp") }

// Put writes data (and its content type) atomically.
func (d *Dir) Put(ctx context.Context, key string, data []byte, contentType string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	rel := filepath.FromSlash(key)
	// The content type first: a reader that sees the new bytes sees their type.
	if err := d.writeFile(filepath.Join(d.typesRoot(), rel), []byte(orDefaultType(contentType))); err != nil {
		return fmt.Errorf("blobstore: put %s: %w", key, err)
	}
	if err := d.writeFile(filepath.Join(d.dataRoot(), rel), data); err != nil {
		return fmt.Errorf("blobstore: put %s: %w", key, err)
	}
	return nil
}

// writeFile writes path atomically: a temporary file in tmp/, synced, renamed into place.
func (d *Dir) writeFile(path string, data []byte) error {
	if err := os.MkdirAll(d.tmpRoot(), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(d.tmpRoot(), "put-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() { _ = os.Remove(tmp) }() // after a successful rename there is nothing to remove
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// A concurrent Delete may remove the parent directory between MkdirAll and Rename when it
	// prunes empty directories: make it again and retry.
	for attempt := 0; ; attempt++ {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		err := os.Rename(tmp, path)
		if err == nil {
			syncDir(filepath.Dir(path))
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == 2 {
			return err
		}
	}
}

// syncDir makes a rename into dir durable where the platform allows it.
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		_ = f.Sync()
		_ = f.Close()
	}
}

// Get reads key.
func (d *Dir) Get(ctx context.Context, key string) ([]byte, string, error) {
	if err := ValidKey(key); err != nil {
		return nil, "", err
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	rel := filepath.FromSlash(key)
	data, err := os.ReadFile(filepath.Join(d.dataRoot(), rel))
	if err != nil {
		if notFound(err) {
			return nil, "", ErrNotFound
		}
		return nil, "", fmt.Errorf("blobstore: get %s: %w", key, err)
	}
	ct, err := os.ReadFile(filepath.Join(d.typesRoot(), rel))
	if err != nil || len(ct) == 0 {
		ct = []byte(DefaultContentType)
	}
	return data, string(ct), nil
}

// notFound: nothing there, a directory (a prefix of other keys, not a blob), or a path through a
// file.
func notFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR)
}

// List returns the keys under prefix, sorted.
func (d *Dir) List(ctx context.Context, prefix string) ([]string, error) {
	return keysOf(d.ListInfo(ctx, prefix))
}

// ListInfo returns the keys under prefix with their sizes, sorted.
func (d *Dir) ListInfo(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := ValidPrefix(prefix); err != nil {
		return nil, err
	}
	// Walk only the deepest directory the prefix names in full.
	start := d.dataRoot()
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = filepath.Join(start, filepath.FromSlash(prefix[:i]))
	}
	var out []ObjectInfo
	err := filepath.WalkDir(start, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if path == start && notFound(err) {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !e.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(d.dataRoot(), path)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted meanwhile
		}
		if err != nil {
			return err
		}
		out = append(out, ObjectInfo{Key: key, Size: fi.Size()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("blobstore: list %q: %w", prefix, err)
	}
	slices.SortFunc(out, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Delete removes key and the directories it leaves empty.
func (d *Dir) Delete(ctx context.Context, key string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	rel := filepath.FromSlash(key)
	for _, root := range []string{d.dataRoot(), d.typesRoot()} {
		path := filepath.Join(root, rel)
		if fi, err := os.Lstat(path); err == nil && fi.IsDir() {
			continue // a prefix of other keys, not a blob
		}
		if err := os.Remove(path); err != nil && !notFound(err) {
			return fmt.Errorf("blobstore: delete %s: %w", key, err)
		}
		pruneEmpty(root, filepath.Dir(path))
	}
	return nil
}

// pruneEmpty removes dir and its parents up to (not including) root while they are empty.
func pruneEmpty(root, dir string) {
	for dir != root && strings.HasPrefix(dir, root+string(filepath.Separator)) {
		if os.Remove(dir) != nil {
			return // not empty, or gone
		}
		dir = filepath.Dir(dir)
	}
}
