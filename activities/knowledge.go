package activities

import (
	"context"
	"fmt"

	"github.com/flexcord/flexcord/kb"
)

// Searcher is what SearchKnowledgeBase needs from the knowledge base; *kb.Store provides it.
type Searcher interface {
	Search(ctx context.Context, query, lang string, limit int) ([]kb.Hit, error)
}

// Knowledge holds the knowledge-base index; its method is the search activity.
type Knowledge struct {
	kb Searcher
}

// NewKnowledge returns the knowledge-base activities over s.
func NewKnowledge(s Searcher) *Knowledge {
	return &Knowledge{kb: s}
}

// SearchKnowledgeBase returns the most relevant articles for a member's question, in the member's
// language first. An empty result means nothing was relevant enough to suggest.
func (k *Knowledge) SearchKnowledgeBase(ctx context.Context, in SearchKnowledgeBaseInput) (SearchKnowledgeBaseResult, error) {
	if k == nil || k.kb == nil {
		return SearchKnowledgeBaseResult{}, notConfigured("the knowledge base")
	}
	limit := in.Limit
	if limit <= 0 {
		limit = kb.DefaultLimit
	}
	hits, err := k.kb.Search(ctx, in.Query, in.Locale, limit)
	if err != nil {
		return SearchKnowledgeBaseResult{}, fmt.Errorf("search the knowledge base: %w", err)
	}
	out := SearchKnowledgeBaseResult{Articles: make([]Article, 0, len(hits))}
	for _, h := range hits {
		out.Articles = append(out.Articles, Article{
			ID: h.ID, Title: h.Title, URL: h.URL, Snippet: h.Snippet, Lang: h.Lang, Score: h.Score,
		})
	}
	return out, nil
}
