package blobstore_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/flexcord/flexcord/internal/blobstore"
)

// s3Server is an in-memory S3-compatible server on an ephemeral loopback port.
type s3Server struct {
	endpoint  string            // https://127.0.0.1:port, or http:// for a plain one
	transport http.RoundTripper // trusts the server's certificate
}

// fakeS3 serves an S3-compatible API over TLS with one bucket.
func fakeS3(t *testing.T, bucket string) s3Server {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	return s3Server{endpoint: srv.URL, transport: srv.Client().Transport}
}

func newS3(t *testing.T, srv s3Server, bucket, prefix string) *blobstore.S3 {
	t.Helper()
	s, err := blobstore.NewS3(blobstore.S3Config{Endpoint: srv.endpoint, Bucket: bucket, AccessKey: "test", SecretKey: "testsecret", Region: "us-east-1", Prefix: prefix, Transport: srv.transport})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// stores are the implementations every conformance test runs against, each new and empty.
func stores(t *testing.T) map[string]func(t *testing.T) blobstore.Store {
	return map[string]func(t *testing.T) blobstore.Store{
		"dir": func(t *testing.T) blobstore.Store {
			d, err := blobstore.NewDir(filepath.Join(t.TempDir(), "blobs"))
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
		"memory": func(t *testing.T) blobstore.Store { return blobstore.NewMemory() },
		"s3": func(t *testing.T) blobstore.Store {
			return newS3(t, fakeS3(t, "flexcord"), "flexcord", "")
		},
		"s3 with prefix": func(t *testing.T) blobstore.Store {
			return newS3(t, fakeS3(t, "flexcord"), "flexcord", "/deploy/a/")
		},
	}
}

func forEachStore(t *testing.T, test func(t *testing.T, s blobstore.Store)) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) { test(t, mk(t)) })
	}
}

func mustPut(t *testing.T, s blobstore.Store, key, data, ct string) {
	t.Helper()
	if err := s.Put(context.Background(), key, []byte(data), ct); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func list(t *testing.T, s blobstore.Store, prefix string) []string {
	t.Helper()
	keys, err := s.List(context.Background(), prefix)
	if err != nil {
		t.Fatalf("list %q: %v", prefix, err)
	}
	return keys
}

func TestPutGetOverwrite(t *testing.T) {
	forEachStore(t, func(t *testing.T, s blobstore.Store) {
		ctx := context.Background()
		key := blobstore.MediaKey("1200000000000000001", "C-7K3QX2", "résumé final.pdf")
		mustPut(t, s, key, "%PDF-1", "application/pdf")
		data, ct, err := s.Get(ctx, key)
		if err != nil || string(data) != "%PDF-1" || ct != "application/pdf" {
			t.Fatalf("get = %q, %q, %v", data, ct, err)
		}
		mustPut(t, s, key, "%PDF-2", "application/x-pdf")
		data, ct, err = s.Get(ctx, key)
		if err != nil || string(data) != "%PDF-2" || ct != "application/x-pdf" {
			t.Fatalf("get after overwrite = %q, %q, %v", data, ct, err)
		}
		mustPut(t, s, "a/empty", "", "")
		data, ct, err = s.Get(ctx, "a/empty")
		if err != nil || len(data) != 0 || ct != blobstore.DefaultContentType {
			t.Fatalf("empty blob = %q, %q, %v", data, ct, err)
		}
		if _, _, err := s.Get(ctx, "a/missing"); !errors.Is(err, blobstore.ErrNotFound) {
			t.Errorf("get missing: %v, want ErrNotFound", err)
		}
		// A prefix of stored keys is not a blob.
		if _, _, err := s.Get(ctx, "members"); !errors.Is(err, blobstore.ErrNotFound) {
			t.Errorf("get of a prefix: %v, want ErrNotFound", err)
		}
	})
}

func TestListSortedAndByPrefix(t *testing.T) {
	forEachStore(t, func(t *testing.T, s blobstore.Store) {
		for _, k := range []string{"members/12/x", "members/1/b", "members/1/a/z", "members/1-a", "members/1/a/b", "other"} {
			mustPut(t, s, k, k, "text/plain")
		}
		for prefix, want := range map[string][]string{
			"members/1/":  {"members/1/a/b", "members/1/a/z", "members/1/b"},
			"members/1":   {"members/1-a", "members/1/a/b", "members/1/a/z", "members/1/b", "members/12/x"},
			"members/1/a": {"members/1/a/b", "members/1/a/z"},
			"":            {"members/1-a", "members/1/a/b", "members/1/a/z", "members/1/b", "members/12/x", "other"},
			"nothing/":    nil,
			"members/9/":  nil,
		} {
			if got := list(t, s, prefix); !slices.Equal(got, want) {
				t.Errorf("list %q = %q, want %q", prefix, got, want)
			}
		}
		infos, err := blobstore.ListInfo(context.Background(), s, "members/1/a/")
		if err != nil || len(infos) != 2 || infos[0] != (blobstore.ObjectInfo{Key: "members/1/a/b", Size: int64(len("members/1/a/b"))}) {
			t.Errorf("ListInfo = %+v, %v", infos, err)
		}
	})
}

func TestDeleteIdempotentAndDeletePrefix(t *testing.T) {
	forEachStore(t, func(t *testing.T, s blobstore.Store) {
		ctx := context.Background()
		mine, theirs := blobstore.MemberPrefix("1200000000000000001"), blobstore.MemberPrefix("12000000000000000011")
		for _, k := range []string{
			blobstore.TranscriptPrefix("1200000000000000001", "C-7K3QX2") + "0000000001.json",
			blobstore.MediaKey("1200000000000000001", "C-7K3QX2", "a.png"),
			blobstore.MediaKey("12000000000000000011", "C-7K3QX3", "b.png"),
		} {
			mustPut(t, s, k, "x", "")
		}
		if err := s.Delete(ctx, "never/stored"); err != nil {
			t.Errorf("delete of a missing key: %v", err)
		}
		deleted, err := blobstore.DeletePrefix(ctx, s, mine)
		if err != nil || len(deleted) != 2 || !strings.HasPrefix(deleted[0], mine) {
			t.Fatalf("DeletePrefix = %q, %v", deleted, err)
		}
		if got := list(t, s, mine); len(got) != 0 {
			t.Errorf("left under %s: %q", mine, got)
		}
		if got := list(t, s, theirs); len(got) != 1 {
			t.Errorf("the other member's blobs: %q", got)
		}
		// Again: nothing to do, no error.
		if deleted, err := blobstore.DeletePrefix(ctx, s, mine); err != nil || len(deleted) != 0 {
			t.Errorf("second DeletePrefix = %q, %v", deleted, err)
		}
		if err := s.Delete(ctx, deleted[0]); err != nil {
			t.Errorf("delete of a deleted key: %v", err)
		}
		if _, err := blobstore.DeletePrefix(ctx, s, ""); err == nil {
			t.Error("DeletePrefix of everything was not refused")
		}
		if len(list(t, s, "")) != 1 {
			t.Error("the refused DeletePrefix deleted something")
		}
	})
}

var badKeys = []string{"", "/etc/passwd", "../x", "a/../../x", "a/..", "a//b", "a/./b", ".", "a/", `a\..\b`, "a\x00b", "a\nb"}

func TestInvalidKeysRefused(t *testing.T) {
	forEachStore(t, func(t *testing.T, s blobstore.Store) {
		ctx := context.Background()
		for _, k := range badKeys {
			if err := s.Put(ctx, k, []byte("x"), ""); err == nil {
				t.Errorf("put %q accepted", k)
			}
			if _, _, err := s.Get(ctx, k); err == nil || errors.Is(err, blobstore.ErrNotFound) {
				t.Errorf("get %q: %v, want a key error", k, err)
			}
			if err := s.Delete(ctx, k); err == nil {
				t.Errorf("delete %q accepted", k)
			}
		}
		for _, p := range []string{"../", "a/../", "/a"} {
			if _, err := s.List(ctx, p); err == nil {
				t.Errorf("list %q accepted", p)
			}
		}
	})
	// The key helpers never make a key that escapes, whatever the ids.
	for _, id := range []string{"..", ".", "", "a/../../b", `..\..`, "x\x00"} {
		for _, k := range []string{blobstore.MemberPrefix(id) + "k", blobstore.TranscriptPrefix(id, id) + "k", blobstore.MediaKey(id, id, id)} {
			if err := blobstore.ValidKey(k); err != nil {
				t.Errorf("helper key %q: %v", k, err)
			}
		}
	}
}

func TestDirStaysInsideItsDirectory(t *testing.T) {
	parent := t.TempDir()
	d, err := blobstore.NewDir(filepath.Join(parent, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, k := range badKeys {
		_ = d.Put(ctx, k, []byte("escaped"), "")
	}
	mustPut(t, d, "ok/key", "fine", "text/plain")
	err = filepath.WalkDir(parent, func(path string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && !strings.HasPrefix(path, filepath.Join(parent, "blobs")+string(filepath.Separator)) {
			t.Errorf("file outside the store: %s", path)
		}
		if !e.IsDir() {
			if b, _ := os.ReadFile(path); string(b) == "escaped" {
				t.Errorf("a refused key was written: %s", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDirDeleteLeavesNoDirectoryOfTheMember(t *testing.T) {
	root := filepath.Join(t.TempDir(), "blobs")
	d, err := blobstore.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const user = "1200000000000000001"
	mustPut(t, d, blobstore.TranscriptPrefix(user, "C-7K3QX2")+"0000000001.json", "{}", "application/json")
	mustPut(t, d, blobstore.MediaKey(user, "C-7K3QX2", "a.png"), "png", "image/png")
	mustPut(t, d, blobstore.MediaKey("1200000000000000002", "C-7K3QX3", "b.png"), "png", "image/png")
	if _, err := blobstore.DeletePrefix(ctx, d, blobstore.MemberPrefix(user)); err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(root, func(path string, e os.DirEntry, err error) error {
		if err == nil && strings.Contains(path, user) {
			t.Errorf("left behind: %s", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Get(ctx, blobstore.MediaKey("1200000000000000002", "C-7K3QX3", "b.png")); err != nil {
		t.Errorf("the other member's blob: %v", err)
	}
	// No temporary files are left either.
	if tmp, _ := os.ReadDir(filepath.Join(root, "tmp")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

func TestDirMissingDirectoryIsEmpty(t *testing.T) {
	d, err := blobstore.NewDir(filepath.Join(t.TempDir(), "not", "yet"))
	if err != nil {
		t.Fatal(err)
	}
	if keys := list(t, d, "members/"); len(keys) != 0 {
		t.Errorf("list = %q", keys)
	}
	if _, _, err := d.Get(context.Background(), "members/1/x"); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("get: %v", err)
	}
	if _, err := os.Stat(d.Root()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reading created the directory: %v", err)
	}
}

// TestDirWritesAreAtomic has readers check that every read of a key being overwritten sees one
// whole version, never a mix or a part.
func TestDirWritesAreAtomic(t *testing.T) {
	d, err := blobstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const key, size = "members/1/transcripts/t/0000000001.json", 128 << 10
	versions := [][]byte{bytes.Repeat([]byte("a"), size), bytes.Repeat([]byte("b"), size)}
	if err := d.Put(ctx, key, versions[0], "text/plain"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				data, _, err := d.Get(ctx, key)
				if err != nil || !bytes.Equal(data, versions[0]) && !bytes.Equal(data, versions[1]) {
					t.Errorf("read %d bytes (%v): not a whole version", len(data), err)
					return
				}
			}
		})
	}
	for i := range 50 {
		if err := d.Put(ctx, key, versions[i%2], "text/plain"); err != nil {
			t.Error(err)
			break
		}
	}
	close(stop)
	wg.Wait()
}

func TestS3PrefixesShareABucket(t *testing.T) {
	endpoint := fakeS3(t, "shared")
	a, b := newS3(t, endpoint, "shared", "a"), newS3(t, endpoint, "shared", "b/")
	mustPut(t, a, "members/1/x", "from a", "")
	if keys := list(t, b, ""); len(keys) != 0 {
		t.Errorf("b sees %q", keys)
	}
	if keys := list(t, a, ""); !slices.Equal(keys, []string{"members/1/x"}) {
		t.Errorf("a lists %q", keys)
	}
	if got := a.String(); got != "S3 bucket shared at "+endpoint.endpoint+", keys under a/" {
		t.Errorf("description %q", got)
	}
}

// TestS3PlainHTTP talks to the server without TLS, as FLEXCORD_S3_INSECURE=true does.
func TestS3PlainHTTP(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("plain"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	s, err := blobstore.NewS3(blobstore.S3Config{Endpoint: strings.TrimPrefix(srv.URL, "http://"), Insecure: true, Bucket: "plain", AccessKey: "k", SecretKey: "s"})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "members/1/x", "over http", "text/plain")
	if data, ct, err := s.Get(context.Background(), "members/1/x"); err != nil || string(data) != "over http" || ct != "text/plain" {
		t.Errorf("get = %q, %q, %v", data, ct, err)
	}
	if !strings.HasPrefix(s.String(), "S3 bucket plain at http://127.0.0.1:") {
		t.Errorf("description %q", s.String())
	}
}

func TestS3MissingBucketIsAClearError(t *testing.T) {
	s := newS3(t, fakeS3(t, "exists"), "absent", "")
	err := s.Put(context.Background(), "k", []byte("x"), "")
	if err == nil || !strings.Contains(err.Error(), "S3 bucket absent") {
		t.Errorf("put into a missing bucket: %v", err)
	}
	if _, err := s.List(context.Background(), ""); err == nil {
		t.Error("list of a missing bucket succeeded")
	}
}

func TestFromEnv(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	dir := t.TempDir()
	for _, c := range []struct {
		name    string
		getenv  func(string) string
		want    string // description prefix, or error substring with wantErr
		wantErr bool
	}{
		{"default directory", env(), "directory " + filepath.Join(mustAbs(t, "."), "data", "blobs"), false},
		{"directory", env("FLEXCORD_BLOB_DIR", dir), "directory " + dir, false},
		{"s3", env("FLEXCORD_S3_BUCKET", "b", "FLEXCORD_S3_ACCESS_KEY", "k", "FLEXCORD_S3_SECRET_KEY", "s", "FLEXCORD_S3_ENDPOINT", "minio:9000", "FLEXCORD_S3_INSECURE", "true", "FLEXCORD_S3_PREFIX", "flexcord"),
			"S3 bucket b at http://minio:9000, keys under flexcord/", false},
		{"aws", env("FLEXCORD_S3_BUCKET", "b", "FLEXCORD_S3_ACCESS_KEY", "k", "FLEXCORD_S3_SECRET_KEY", "s", "FLEXCORD_S3_REGION", "eu-west-1"),
			"S3 bucket b at https://s3.amazonaws.com", false},
		{"endpoint without bucket", env("FLEXCORD_S3_ENDPOINT", "minio:9000"), "FLEXCORD_S3_ENDPOINT is set but FLEXCORD_S3_BUCKET is not", true},
		{"secret without bucket", env("FLEXCORD_S3_SECRET_KEY", "s"), "FLEXCORD_S3_SECRET_KEY is set but FLEXCORD_S3_BUCKET is not", true},
		{"no keys", env("FLEXCORD_S3_BUCKET", "b"), "FLEXCORD_S3_ACCESS_KEY and FLEXCORD_S3_SECRET_KEY are not", true},
		{"no secret", env("FLEXCORD_S3_BUCKET", "b", "FLEXCORD_S3_ACCESS_KEY", "k"), "FLEXCORD_S3_SECRET_KEY is not", true},
		{"both places", env("FLEXCORD_S3_BUCKET", "b", "FLEXCORD_BLOB_DIR", dir), "both FLEXCORD_BLOB_DIR and FLEXCORD_S3_BUCKET are set", true},
		{"bad insecure", env("FLEXCORD_S3_BUCKET", "b", "FLEXCORD_S3_ACCESS_KEY", "k", "FLEXCORD_S3_SECRET_KEY", "s", "FLEXCORD_S3_INSECURE", "maybe"), `FLEXCORD_S3_INSECURE="maybe" is not true or false`, true},
		{"endpoint with a path", env("FLEXCORD_S3_BUCKET", "b", "FLEXCORD_S3_ACCESS_KEY", "k", "FLEXCORD_S3_SECRET_KEY", "s", "FLEXCORD_S3_ENDPOINT", "https://minio/x"), "without a path", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, desc, err := blobstore.FromEnv(c.getenv)
			if c.wantErr {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("err = %v, want %q", err, c.want)
				}
				if strings.Contains(fmtErr(err), "secret") && strings.Contains(fmtErr(err), "=s") {
					t.Errorf("error shows the secret: %v", err)
				}
				return
			}
			if err != nil || s == nil || !strings.HasPrefix(desc, c.want) {
				t.Errorf("FromEnv = %v, %q, %v; want %q", s, desc, err, c.want)
			}
			if strings.Contains(desc, "k") && strings.Contains(desc, " s") {
				t.Errorf("description shows a key: %q", desc)
			}
		})
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}
