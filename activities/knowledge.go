package activities

import "context"

// Knowledge holds the knowledge-base index; its method is the search activity.
type Knowledge struct{}

// SearchKnowledgeBase returns the most relevant articles for a member's question.
func (k *Knowledge) SearchKnowledgeBase(ctx context.Context, in SearchKnowledgeBaseInput) (SearchKnowledgeBaseResult, error) {
	return SearchKnowledgeBaseResult{}, notConfigured("the knowledge base")
}
