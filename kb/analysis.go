package kb

import (
	"fmt"
	"unicode"

	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/lang/cjk"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/analysis/lang/id"
	"github.com/blevesearch/bleve/v2/analysis/lang/pt"
	"github.com/blevesearch/bleve/v2/analysis/lang/ro"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/token/porter"
	"github.com/blevesearch/bleve/v2/analysis/token/shingle"
	unicodetok "github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/registry"
	"github.com/blevesearch/snowballstem"
	"github.com/blevesearch/snowballstem/portuguese"
	"golang.org/x/text/unicode/norm"
)

// Names of the token filters this package registers with Bleve.
const (
	foldFilterName   = "flexcord_fold"
	idStemFilterName = "flexcord_stemmer_id"
	hangulBigramName = "flexcord_hangul_bigram"
	kanaPruneName    = "flexcord_kana_prune"
	ptStemFilterName = "flexcord_stemmer_pt_snowball"

	cjkBigramUnigramName = "flexcord_cjk_bigram_unigram"
)

func init() {
	if err := registry.RegisterTokenFilter(foldFilterName, func(map[string]any, *registry.Cache) (analysis.TokenFilter, error) {
		return foldFilter{}, nil
	}); err != nil {
		panic(err)
	}
	if err := registry.RegisterTokenFilter(hangulBigramName, func(map[string]any, *registry.Cache) (analysis.TokenFilter, error) {
		return hangulBigramFilter{}, nil
	}); err != nil {
		panic(err)
	}
	if err := registry.RegisterTokenFilter(ptStemFilterName, func(map[string]any, *registry.Cache) (analysis.TokenFilter, error) {
		return ptStemFilter{}, nil
	}); err != nil {
		panic(err)
	}
	if err := registry.RegisterTokenFilter(kanaPruneName, func(map[string]any, *registry.Cache) (analysis.TokenFilter, error) {
		return kanaPruneFilter{}, nil
	}); err != nil {
		panic(err)
	}
	if err := registry.RegisterTokenFilter(idStemFilterName, func(map[string]any, *registry.Cache) (analysis.TokenFilter, error) {
		return idStemFilter{}, nil
	}); err != nil {
		panic(err)
	}
}

// analyzerFor returns the name of the analyzer used for a base language and
// adds its definition to m. Languages without a dedicated analyzer use a
// plain Unicode word analyzer with accent folding.
func analyzerFor(m *mapping.IndexMappingImpl, lang string) (string, error) {
	var filters []any
	switch lang {
	case "en":
		filters = []any{en.PossessiveName, lowercase.Name, en.StopName, porter.Name}
	case "pt":
		filters = []any{lowercase.Name, pt.StopName, ptStemFilterName, foldFilterName}

	case "ro":
		filters = []any{lowercase.Name, ro.StopName, ro.SnowballStemmerName, foldFilterName}
	case "id":
		filters = []any{lowercase.Name, id.StopName, idStemFilterName}
	case "ja", "ko", "zh":
		// Bigrams and single characters: a kanji alone often carries the
		// meaning (税, 届), and the unigrams raised Hit@3 on the Japanese
		// evaluation set from 0.41 to 0.56. Kana-only tokens are pruned.
		if err := m.AddCustomTokenFilter(cjkBigramUnigramName, map[string]any{"type": cjk.BigramName, "output_unigram": true}); err != nil {
			return "", fmt.Errorf("define CJK bigram filter: %w", err)
		}
		filters = []any{cjk.WidthName, lowercase.Name, cjkBigramUnigramName, hangulBigramName, kanaPruneName}
	default:
		filters = []any{lowercase.Name, foldFilterName}
	}
	name := "flexcord_" + lang
	err := m.AddCustomAnalyzer(name, map[string]any{
		"type":          custom.Name,
		"tokenizer":     unicodetok.Name,
		"token_filters": filters,
	})
	if err != nil {
		return "", fmt.Errorf("define analyzer for %q: %w", lang, err)
	}
	return name, nil
}

// pairAnalyzerFor defines and names the analyzer of the "pairs" field: the
// language analyzer followed by word-bigram shingles, so that articles
// sharing whole phrases with the question ("delete account", "cartão
// cidadão") rank above those that merely share its words. It returns "" for
// languages written without spaces, where character bigrams already capture
// adjacency.
func pairAnalyzerFor(m *mapping.IndexMappingImpl, lang, base string) (string, error) {
	switch lang {
	case "ja", "ko", "zh":
		return "", nil
	}
	if err := m.AddCustomTokenFilter("flexcord_pairs", map[string]any{
		"type": shingle.Name, "min": 2.0, "max": 2.0, "output_original": false, "separator": " ", "filler": "",
	}); err != nil {
		return "", fmt.Errorf("define word-pair filter: %w", err)
	}
	def := m.CustomAnalysis.Analyzers[base]
	filters := append(append([]any(nil), def["token_filters"].([]any)...), "flexcord_pairs")
	name := base + "_pairs"
	if err := m.AddCustomAnalyzer(name, map[string]any{
		"type":          custom.Name,
		"tokenizer":     unicodetok.Name,
		"token_filters": filters,
	}); err != nil {
		return "", fmt.Errorf("define word-pair analyzer for %q: %w", lang, err)
	}
	return name, nil
}

// foldFilter removes diacritics from terms ("mașină" → "masina", "não" →
// "nao") so that questions typed without accents still match. It runs after
// stemming and keeps token offsets intact.
type foldFilter struct{}

func (foldFilter) Filter(in analysis.TokenStream) analysis.TokenStream {
	for _, tok := range in {
		if isASCII(tok.Term) {
			continue
		}
		d := norm.NFD.Bytes(tok.Term)
		out := make([]byte, 0, len(d))
		for _, r := range string(d) {
			if unicode.Is(unicode.Mn, r) {
				continue
			}
			out = append(out, string(r)...)
		}
		tok.Term = out
	}
	return in
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// hangulBigramFilter splits Korean words into overlapping syllable bigrams
// ("비밀번호를" → 비밀 밀번 번호 호를), as Bleve's CJK bigram filter does for
// Han and kana but not for Hangul, which its tokenizer keeps as whole
// space-separated words with their particles attached. Bigrams let
// "비밀번호를" match "비밀번호" without a Korean morphological analyzer.
type hangulBigramFilter struct{}

func (hangulBigramFilter) Filter(in analysis.TokenStream) analysis.TokenStream {
	out := make(analysis.TokenStream, 0, len(in))
	pos := 1
	for _, tok := range in {
		runes := []rune(string(tok.Term))
		if len(runes) < 3 || !allHangul(runes) {
			tok.Position = pos
			pos++
			out = append(out, tok)
			continue
		}
		off := tok.Start
		for i := 0; i+1 < len(runes); i++ {
			w0, w1 := len(string(runes[i])), len(string(runes[i+1]))
			out = append(out, &analysis.Token{
				Term:     []byte(string(runes[i : i+2])),
				Start:    off,
				End:      off + w0 + w1,
				Position: pos,
				Type:     tok.Type,
			})
			off += w0
			pos++
		}
	}
	return out
}

func allHangul(rs []rune) bool {
	for _, r := range rs {
		if !unicode.Is(unicode.Hangul, r) {
			return false
		}
	}
	return true
}

// kanaPruneFilter drops the single hiragana that the unigram output of the
// CJK bigram filter produces, and the bigrams made only of hiragana:
// particles and inflections (の, を, ます, ください) that match nearly every
// document, carry little meaning and make queries slow. Kanji and katakana
// unigrams and all other bigrams are kept (dropping katakana unigrams cost
// 3 points of Hit@3 on localgovfaq).
type kanaPruneFilter struct{}

func (kanaPruneFilter) Filter(in analysis.TokenStream) analysis.TokenStream {
	out := in[:0]
	for _, tok := range in {
		rs := []rune(string(tok.Term))
		if len(rs) == 1 && unicode.Is(unicode.Hiragana, rs[0]) {
			continue
		}
		if len(rs) == 2 && unicode.Is(unicode.Hiragana, rs[0]) && unicode.Is(unicode.Hiragana, rs[1]) {
			continue
		}
		out = append(out, tok)
	}
	return out
}

// ptStemFilter applies the Snowball Portuguese stemmer, which, unlike
// Bleve's light stemmer (plural and gender only), also conflates verb forms
// ("pedir", "pedidos", "pedido" → "ped"; "cancelar", "cancelado" →
// "cancel").
type ptStemFilter struct{}

func (ptStemFilter) Filter(in analysis.TokenStream) analysis.TokenStream {
	for _, tok := range in {
		env := snowballstem.NewEnv(string(tok.Term))
		portuguese.Stem(env)
		tok.Term = []byte(env.Current())
	}
	return in
}
