package kb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// Source loads the articles of a knowledge base; warnings name the
// articles that were skipped.
type Source func() (arts []Article, warnings []error, err error)

// DirSource loads the Markdown articles under dir (see LoadDir).
func DirSource(dir string, log *slog.Logger) Source {
	return func() ([]Article, []error, error) { return LoadDir(dir, log) }
}

// SampleSource loads the embedded sample knowledge base (see Sample).
func SampleSource() Source {
	return func() ([]Article, []error, error) {
		arts, err := Sample()
		return arts, nil, err
	}
}

// Store holds the current Index and rebuilds it from its Source on Reload,
// so that a running worker picks up edited articles (on SIGHUP, say)
// without a restart. Searches never wait for a reload. It is safe for
// concurrent use.
type Store struct {
	src  Source
	opts []Option
	log  *slog.Logger

	mu  sync.Mutex // serializes reloads
	cur atomic.Pointer[Index]
}

// NewStore loads src and builds the first index. It fails if no article
// loads.
func NewStore(src Source, log *slog.Logger, opts ...Option) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{src: src, opts: opts, log: log}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload rebuilds the index from the source and swaps it in. If loading or
// indexing fails, or no article loads, the current index stays in place
// and the error is returned. Skipped articles are logged as warnings.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	arts, warns, err := s.src()
	for _, w := range warns {
		s.log.Warn("knowledge base: article skipped", "error", w)
	}
	if err != nil {
		return fmt.Errorf("reload knowledge base: %w", err)
	}
	if len(arts) == 0 {
		return fmt.Errorf("reload knowledge base: %w", ErrNoArticles)
	}
	ix, err := NewIndex(arts, s.opts...)
	if err != nil {
		return fmt.Errorf("reload knowledge base: %w", err)
	}
	old := s.cur.Swap(ix)
	s.log.Info("knowledge base loaded", "articles", ix.Len(), "skipped", len(warns))
	if old != nil {
		// Close waits for searches still running on the old index.
		if err := old.Close(); err != nil {
			s.log.Warn("knowledge base: close previous index", "error", err)
		}
	}
	return nil
}

// Index returns the current index. It may be closed by a later Reload;
// prefer Store.Search, which handles that.
func (s *Store) Index() *Index { return s.cur.Load() }

// Search searches the current index (see Index.Search).
func (s *Store) Search(ctx context.Context, q, lang string, limit int) ([]Hit, error) {
	for {
		ix := s.cur.Load()
		hits, err := ix.Search(ctx, q, lang, limit)
		if errors.Is(err, ErrClosed) && s.cur.Load() != ix {
			// A reload swapped the index between Load and Search; the
			// new one is already in place.
			continue
		}
		return hits, err
	}
}

// Close closes the current index.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur.Load().Close()
}
