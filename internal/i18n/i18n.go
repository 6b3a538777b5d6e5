// Package i18n holds every text a community member sees, one catalog file per language, and picks
// the right one from a Discord locale.
//
// Catalogs are embedded JSON objects mapping a key to a template. Templates name their arguments in
// braces ("Case {case} created"). The package does no I/O after init and keeps no mutable state, so
// workflow code may call it.
package i18n

import (
	"embed"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"
	"unicode"
)

// Fallback is the language used when a locale has no catalog or a catalog lacks a key.
const Fallback = "en-US"

//go:embed catalog/*.json
var files embed.FS

// catalogs maps a language tag (the catalog file name without ".json") to its texts.
var catalogs = mustLoad()

// languages lists the catalog tags in sorted order, so that lookups never depend on map order.
var languages = sortedLanguages()

func sortedLanguages() []string {
	langs := make([]string, 0, len(catalogs))
	for l := range catalogs {
		langs = append(langs, l)
	}
	sort.Strings(langs)
	return langs
}

func mustLoad() map[string]map[string]string {
	entries, err := files.ReadDir("catalog")
	if err != nil {
		panic(fmt.Sprintf("i18n: read embedded catalogs: %v", err))
	}
	out := make(map[string]map[string]string, len(entries))
	for _, e := range entries {
		raw, err := files.ReadFile(path.Join("catalog", e.Name()))
		if err != nil {
			panic(fmt.Sprintf("i18n: read %s: %v", e.Name(), err))
		}
		var texts map[string]string
		if err := json.Unmarshal(raw, &texts); err != nil {
			panic(fmt.Sprintf("i18n: parse %s: %v", e.Name(), err))
		}
		out[strings.TrimSuffix(e.Name(), ".json")] = texts
	}
	if _, ok := out[Fallback]; !ok {
		panic("i18n: no " + Fallback + " catalog")
	}
	return out
}

// Languages lists the language tags that have a catalog, sorted.
func Languages() []string {
	return append([]string(nil), languages...)
}

// Keys lists every key of the fallback catalog, sorted. Every other catalog must have the same keys.
func Keys() []string {
	keys := make([]string, 0, len(catalogs[Fallback]))
	for k := range catalogs[Fallback] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Has reports whether the catalog of lang defines key.
func Has(lang, key string) bool {
	_, ok := catalogs[lang][key]
	return ok
}

// Match returns the catalog language for a Discord locale: an exact match ("pt-BR"), then the same
// base language ("en-GB" → "en-US", "ko" → "ko"), then Fallback.
func Match(locale string) string {
	if _, ok := catalogs[locale]; ok {
		return locale
	}
	base, _, _ := strings.Cut(strings.ToLower(locale), "-")
	if base == "" {
		return Fallback
	}
	for _, l := range languages {
		if lb, _, _ := strings.Cut(strings.ToLower(l), "-"); lb == base {
			return l
		}
	}
	return Fallback
}

// T returns the text for key in the language matching locale, with {name} placeholders replaced by
// the following name, value argument pairs. A key missing from a catalog falls back to English; a
// key missing everywhere is returned as is, so a bug shows up as a visible key rather than a blank.
func T(locale, key string, args ...string) string {
	tmpl, ok := catalogs[Match(locale)][key]
	if !ok {
		tmpl, ok = catalogs[Fallback][key]
	}
	if !ok {
		return key
	}
	if len(args) == 0 {
		return tmpl
	}
	pairs := make([]string, 0, len(args))
	for i := 0; i+1 < len(args); i += 2 {
		pairs = append(pairs, "{"+args[i]+"}", args[i+1])
	}
	return strings.NewReplacer(pairs...).Replace(tmpl)
}

// WantsHuman reports whether a member's message asks for a person rather than the bot, in any of
// the catalog languages (key "phrases.human": a "|"-separated list of words and phrases). Short
// messages are matched on whole words; the check is case-insensitive.
func WantsHuman(text string) bool {
	norm := normalize(text)
	if norm == "" {
		return false
	}
	for _, lang := range languages {
		for _, phrase := range strings.Split(catalogs[lang]["phrases.human"], "|") {
			phrase = normalize(phrase)
			if phrase != "" && containsPhrase(norm, phrase) {
				return true
			}
		}
	}
	return false
}

func normalize(s string) string {
	s = strings.ToLower(s)
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r) && !unicode.Is(unicode.Mn, r)
	}), " ")
}

// containsPhrase matches phrase in text on word boundaries for scripts that separate words with
// spaces, and as a substring for scripts that do not (Japanese, Chinese).
func containsPhrase(text, phrase string) bool {
	if !spaced(phrase) {
		return strings.Contains(text, phrase)
	}
	padded := " " + text + " "
	return strings.Contains(padded, " "+phrase+" ")
}

func spaced(s string) bool {
	for _, r := range s {
		if unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana) {
			return false
		}
	}
	return true
}
