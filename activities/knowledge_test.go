package activities

import (
	"context"
	"testing"

	"github.com/flexcord/flexcord/kb"
)

func TestSearchKnowledgeBaseOverTheSample(t *testing.T) {
	store, err := kb.NewStore(kb.SampleSource(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	k := NewKnowledge(store)

	res, err := k.SearchKnowledgeBase(context.Background(), SearchKnowledgeBaseInput{Query: "I forgot my password and can't log in", Locale: "en-US", Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Articles) == 0 || len(res.Articles) > 3 {
		t.Fatalf("got %d articles", len(res.Articles))
	}
	for _, a := range res.Articles {
		if a.Title == "" || a.URL == "" || a.Snippet == "" {
			t.Errorf("incomplete article %+v", a)
		}
	}
	res, err = k.SearchKnowledgeBase(context.Background(), SearchKnowledgeBaseInput{Query: "purple elephant quantum banana", Locale: "en-US"})
	if err != nil || len(res.Articles) != 0 {
		t.Fatalf("nonsense question: %+v, %v", res.Articles, err)
	}
}
