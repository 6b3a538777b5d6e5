package transcript

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/flexcord/flexcord/internal/blobstore"
)

// chunkSuffix ends every chunk's key.
const chunkSuffix = ".json"

// ChunkKey is where the chunk whose first entry is firstSeq is kept: under
// blobstore.TranscriptPrefix, named by the sequence number zero-padded to ten digits, so that keys
// sort in transcript order.
func ChunkKey(discordUserID, transcriptID string, firstSeq int) string {
	return blobstore.TranscriptPrefix(discordUserID, transcriptID) + fmt.Sprintf("%010d", firstSeq) + chunkSuffix
}

// Write stores chunk as one blob named by its first entry's Seq. Writing the same chunk again
// writes the same bytes to the same key, so a retried write leaves one chunk. A chunk without
// entries writes nothing. Entries are stored in Seq order; a Seq below 1 or twice in one chunk is
// an error.
func Write(ctx context.Context, store blobstore.Store, chunk Chunk) error {
	if chunk.DiscordUserID == "" || chunk.TranscriptID == "" {
		return errors.New("transcript: a chunk needs a Discord user id and a transcript id")
	}
	if len(chunk.Entries) == 0 {
		return nil
	}
	chunk.Entries = slices.Clone(chunk.Entries)
	slices.SortStableFunc(chunk.Entries, func(a, b Entry) int { return a.Seq - b.Seq })
	for i, e := range chunk.Entries {
		if e.Seq < 1 {
			return fmt.Errorf("transcript %s: entry with seq %d (seqs start at 1)", chunk.TranscriptID, e.Seq)
		}
		if i > 0 && chunk.Entries[i-1].Seq == e.Seq {
			return fmt.Errorf("transcript %s: seq %d twice in one chunk", chunk.TranscriptID, e.Seq)
		}
	}
	data, err := json.Marshal(chunk)
	if err != nil {
		return fmt.Errorf("transcript %s: %w", chunk.TranscriptID, err)
	}
	key := ChunkKey(chunk.DiscordUserID, chunk.TranscriptID, chunk.Entries[0].Seq)
	if err := store.Put(ctx, key, data, "application/json"); err != nil {
		return fmt.Errorf("transcript %s: %w", chunk.TranscriptID, err)
	}
	return nil
}

// Read returns every entry of a transcript, from all its chunks, in Seq order. A Seq that more
// than one chunk holds (a write retried with a different cut) is kept once, from the chunk whose
// key sorts first. A transcript that has no chunk reads as no entries and no error.
func Read(ctx context.Context, store blobstore.Store, discordUserID, transcriptID string) ([]Entry, error) {
	prefix := blobstore.TranscriptPrefix(discordUserID, transcriptID)
	keys, err := store.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("transcript %s: %w", transcriptID, err)
	}
	var all []Entry
	for _, key := range keys {
		name := strings.TrimPrefix(key, prefix)
		if strings.Contains(name, "/") || !strings.HasSuffix(name, chunkSuffix) {
			continue // not a chunk
		}
		data, _, err := store.Get(ctx, key)
		if errors.Is(err, blobstore.ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("transcript %s: %w", transcriptID, err)
		}
		var c Chunk
		if err := json.Unmarshal(data, &c); err != nil {
			return nil, fmt.Errorf("transcript %s: chunk %s: %w", transcriptID, key, err)
		}
		all = append(all, c.Entries...)
	}
	// Stable: among equal Seqs the entry of the first chunk (in key order) comes first, and stays.
	slices.SortStableFunc(all, func(a, b Entry) int { return a.Seq - b.Seq })
	return slices.CompactFunc(all, func(a, b Entry) bool { return a.Seq == b.Seq }), nil
}
