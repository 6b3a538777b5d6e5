package blobstore

import (
	"context"
	"slices"
	"strings"
	"sync"
)

// Memory is a Store in memory, for tests.
type Memory struct {
	mu    sync.Mutex
	blobs map[string]memBlob
}

type memBlob struct {
	data        []byte
	contentType string
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{blobs: map[string]memBlob{}} }

// Put stores a copy of data.
func (m *Memory) Put(ctx context.Context, key string, data []byte, contentType string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blobs[key] = memBlob{data: slices.Clone(data), contentType: orDefaultType(contentType)}
	return nil
}

// Get returns a copy of what key holds.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, string, error) {
	if err := ValidKey(key); err != nil {
		return nil, "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[key]
	if !ok {
		return nil, "", ErrNotFound
	}
	return slices.Clone(b.data), b.contentType, nil
}

// List returns the keys under prefix, sorted.
func (m *Memory) List(ctx context.Context, prefix string) ([]string, error) {
	return keysOf(m.ListInfo(ctx, prefix))
}

// ListInfo returns the keys under prefix with their sizes, sorted.
func (m *Memory) ListInfo(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := ValidPrefix(prefix); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []ObjectInfo
	for k, b := range m.blobs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, ObjectInfo{Key: k, Size: int64(len(b.data))})
		}
	}
	slices.SortFunc(out, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Delete removes key.
func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.blobs, key)
	return nil
}
