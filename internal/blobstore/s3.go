package blobstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config names an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2, Backblaze B2…).
type S3Config struct {
	// Endpoint is host[:port], or a URL with http:// or https://. Empty means AWS S3
	// (s3.amazonaws.com).
	Endpoint string
	Bucket   string
	// AccessKey and SecretKey are static credentials; both are needed.
	AccessKey, SecretKey string
	// Region is the bucket's region; empty lets the client find it.
	Region string
	// Prefix is prepended to every key, so that flexcord can share a bucket ("flexcord/").
	Prefix string
	// Insecure talks plain HTTP (a local MinIO); an http:// endpoint does too.
	Insecure bool
	// Transport replaces the HTTP transport, for tests.
	Transport http.RoundTripper
}

// DefaultS3Endpoint is AWS S3's endpoint.
const DefaultS3Endpoint = "s3.amazonaws.com"

// S3 is a Store in an S3-compatible bucket, through the MinIO client.
type S3 struct {
	c        *minio.Client
	bucket   string
	prefix   string
	endpoint string
	secure   bool
}

var (
	_ Store      = (*S3)(nil)
	_ InfoLister = (*S3)(nil)
)

// NewS3 returns a store in cfg's bucket. It does not contact the server: the first call does.
func NewS3(cfg S3Config) (*S3, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("blobstore: S3 needs a bucket")
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, errors.New("blobstore: S3 needs an access key and a secret key")
	}
	endpoint, secure := cfg.Endpoint, !cfg.Insecure
	switch {
	case endpoint == "":
		endpoint = DefaultS3Endpoint
	case strings.HasPrefix(endpoint, "http://"):
		endpoint, secure = strings.TrimPrefix(endpoint, "http://"), false
	case strings.HasPrefix(endpoint, "https://"):
		endpoint = strings.TrimPrefix(endpoint, "https://")
	case strings.Contains(endpoint, "://"):
		return nil, fmt.Errorf("blobstore: S3 endpoint %q: want host:port, http://host:port or https://host:port", cfg.Endpoint)
	}
	endpoint = strings.TrimSuffix(endpoint, "/")
	if endpoint == "" || strings.Contains(endpoint, "/") {
		return nil, fmt.Errorf("blobstore: S3 endpoint %q: want host:port, without a path", cfg.Endpoint)
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		if err := ValidKey(prefix); err != nil {
			return nil, fmt.Errorf("blobstore: S3 prefix %q: %w", cfg.Prefix, err)
		}
		prefix += "/"
	}
	c, err := minio.New(endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    secure,
		Region:    cfg.Region,
		Transport: cfg.Transport,
	})
	if err != nil {
		return nil, fmt.Errorf("blobstore: S3 endpoint %q: %w", cfg.Endpoint, err)
	}
	return &S3{c: c, bucket: cfg.Bucket, prefix: prefix, endpoint: endpoint, secure: secure}, nil
}

// String describes the store for operators (no credentials).
func (s *S3) String() string {
	scheme := "https"
	if !s.secure {
		scheme = "http"
	}
	d := fmt.Sprintf("S3 bucket %s at %s://%s", s.bucket, scheme, s.endpoint)
	if s.prefix != "" {
		d += ", keys under " + s.prefix
	}
	return d
}

// Put writes data as one object.
func (s *S3) Put(ctx context.Context, key string, data []byte, contentType string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	_, err := s.c.PutObject(ctx, s.bucket, s.prefix+key, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: orDefaultType(contentType)})
	if err != nil {
		return fmt.Errorf("blobstore: put %s in S3 bucket %s: %w", key, s.bucket, err)
	}
	return nil
}

// Get reads key.
func (s *S3) Get(ctx context.Context, key string) ([]byte, string, error) {
	if err := ValidKey(key); err != nil {
		return nil, "", err
	}
	obj, err := s.c.GetObject(ctx, s.bucket, s.prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, "", s.getErr(key, err)
	}
	defer obj.Close()
	info, err := obj.Stat()
	if err != nil {
		return nil, "", s.getErr(key, err)
	}
	data, err := io.ReadAll(obj)
	if err != nil {
		return nil, "", s.getErr(key, err)
	}
	return data, orDefaultType(info.ContentType), nil
}

func (s *S3) getErr(key string, err error) error {
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return ErrNotFound
	}
	return fmt.Errorf("blobstore: get %s from S3 bucket %s: %w", key, s.bucket, err)
}

// List returns the keys under prefix, sorted.
func (s *S3) List(ctx context.Context, prefix string) ([]string, error) {
	return keysOf(s.ListInfo(ctx, prefix))
}

// ListInfo returns the keys under prefix with their sizes, sorted.
func (s *S3) ListInfo(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := ValidPrefix(prefix); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine if we return early
	var out []ObjectInfo
	for o := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("blobstore: list %q in S3 bucket %s: %w", prefix, s.bucket, o.Err)
		}
		key, ok := strings.CutPrefix(o.Key, s.prefix)
		if !ok || ValidKey(key) != nil {
			continue // not one of ours (a "directory" marker, say)
		}
		out = append(out, ObjectInfo{Key: key, Size: o.Size})
	}
	slices.SortFunc(out, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Delete removes key; S3 answers a delete of a missing key with success too.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	err := s.c.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{})
	if err != nil && minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		return fmt.Errorf("blobstore: delete %s from S3 bucket %s: %w", key, s.bucket, err)
	}
	return nil
}
