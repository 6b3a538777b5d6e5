package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/flexcord/flexcord/internal/config"
	"github.com/flexcord/flexcord/kb"
)

// kbSettings chooses the knowledge base.
type kbSettings struct{ dir string }

func (k *kbSettings) bind(b *config.Binder) {
	b.String(&k.dir, "kb-dir", "KB_DIR", "", "directory of Markdown help articles (default: the sample help center built into the binary)")
}

// open builds the index. A malformed article is skipped with a warning; an empty knowledge base
// is an error.
func (k *kbSettings) open(log *slog.Logger) (*kb.Store, error) {
	src := kb.SampleSource()
	if k.dir != "" {
		src = kb.DirSource(k.dir, log)
	}
	store, err := kb.NewStore(src, log)
	if err != nil {
		if k.dir != "" {
			return nil, fmt.Errorf("knowledge base in KB_DIR=%s: %w", k.dir, err)
		}
		return nil, fmt.Errorf("knowledge base: %w", err)
	}
	log.Info("knowledge base loaded", "articles", store.Index().Len(), "dir", k.dir)
	return store, nil
}

// reloadOnHangup rebuilds the index on SIGHUP until ctx is done, so that edited articles are
// picked up without restarting; a failed reload keeps the current index.
func reloadOnHangup(ctx context.Context, store *kb.Store, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := store.Reload(); err != nil {
					log.Error("knowledge base reload failed; keeping the current index", "error", err)
					continue
				}
				log.Info("knowledge base reloaded", "articles", store.Index().Len())
			}
		}
	}()
}
