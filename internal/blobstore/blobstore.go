// Package blobstore keeps what flexcord must hold outside workflow history: members' transcripts
// and the attachments re-hosted from Discord and Flex. A local directory is the default; S3-
// compatible object storage is used when configured.
//
// Keys are slash-separated paths. Everything of one Discord member lives under MemberPrefix, so
// erasing a member is deleting one prefix.
package blobstore

import (
	"context"
	"errors"
	"strings"
)

// ErrNotFound is returned by Get for a key that holds nothing.
var ErrNotFound = errors.New("blobstore: not found")

// Store is a flat key → bytes store. Put overwrites; writing the same bytes twice is harmless, which
// is what makes activities that write blobs safe to retry.
type Store interface {
	Put(ctx context.Context, key string, data []byte, contentType string) error
	// Get returns the bytes and content type of key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, string, error)
	// List returns the keys under prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// Delete removes key; deleting a key that holds nothing is not an error.
	Delete(ctx context.Context, key string) error
}

// MemberPrefix is where everything of one Discord member is kept.
func MemberPrefix(discordUserID string) string {
	return "members/" + clean(discordUserID) + "/"
}

// TranscriptPrefix is where the chunks of one transcript are kept.
func TranscriptPrefix(discordUserID, transcriptID string) string {
	return MemberPrefix(discordUserID) + "transcripts/" + clean(transcriptID) + "/"
}

// MediaKey is where one re-hosted attachment is kept.
func MediaKey(discordUserID, transcriptID, name string) string {
	return MemberPrefix(discordUserID) + "media/" + clean(transcriptID) + "/" + clean(name)
}

// clean keeps a key segment a single, safe path segment.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '/' || r == '\\' || r < 0x20 || r == 0x7f:
			return '_'
		}
		return r
	}, s)
	if s == "" || s == "." || s == ".." {
		return "_"
	}
	return s
}
