// Package kb is flexcord's knowledge base: help-center articles loaded from
// Markdown files or a JSONL corpus, indexed in memory with Bleve using an
// analyzer suited to each article's language, and searched with results in
// the member's language first and English as the fallback.
//
// A sample help center for a fictional mobile game is embedded in the binary
// (see Sample) so that the FAQ bot works out of the box.
package kb

// Article is one help-center article.
type Article struct {
	// ID identifies the article within its knowledge base; for a Markdown
	// directory it is the file's path relative to the directory, without
	// extension ("en/account/delete-account").
	ID string `json:"id"`
	// Lang is the article's language tag ("en", "pt-BR", "ja").
	Lang string `json:"lang"`
	// Title is the article's title, usually phrased as a question.
	Title string `json:"title"`
	// URL links to the article in the public help center (may be empty).
	URL string `json:"url,omitempty"`
	// Body is the article text (Markdown).
	Body string `json:"body"`
	// Tags are optional topic labels.
	Tags []string `json:"tags,omitempty"`
}

// Hit is one search result.
type Hit struct {
	Article
	// Score is the relevance score the ranking is based on; it only
	// compares hits of the same search.
	Score float64 `json:"score"`
	// Confidence, in [0, 1], is the share of the question's information
	// (terms weighted by rarity) that the article contains. Hits below the
	// index's minimum confidence are never returned.
	Confidence float64 `json:"confidence"`
	// Snippet is a short plain-text excerpt of the body around the words
	// that matched, suitable for a Discord embed description.
	Snippet string `json:"snippet"`
}
