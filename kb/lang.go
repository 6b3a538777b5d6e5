package kb

import "strings"

// Languages lists the article languages the sample knowledge base ships
// and the search analyzers are tuned for, as Article.Lang values.
var Languages = []string{"en", "ko", "ja", "ro", "id", "pt-BR"}

// BaseLang reduces a language tag to the primary subtag the search index is
// keyed by: Discord locales ("en-US", "pt-BR", "zh-TW"), corpus codes ("pt",
// "ja") and POSIX-style tags ("pt_BR") all map to a lower-case code such as
// "en" or "pt". An empty tag maps to "en".
func BaseLang(tag string) string {
	tag = strings.TrimSpace(tag)
	if i := strings.IndexAny(tag, "-_"); i >= 0 {
		tag = tag[:i]
	}
	tag = strings.ToLower(tag)
	switch tag {
	case "":
		return "en"
	case "in": // legacy code for Indonesian
		return "id"
	}
	return tag
}
