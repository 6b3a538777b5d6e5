package kb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/search/query"
	bleveindex "github.com/blevesearch/bleve_index_api"
)

// DefaultMinConfidence is the confidence (see Hit.Confidence) below which a
// hit is dropped. It was calibrated on the kbeval sets by indexing half of
// each corpus: at 0.20, 98.8% (stackfaq, English) and 100% (aia-bde,
// Portuguese) of the correct top-3 answers are kept, and questions sharing
// no substantial words with the knowledge base get no answer at all. For
// Japanese, Korean and Chinese, whose character n-grams spread a question
// over many more terms, the threshold is scaled by cjkConfidenceScale
// (0.15 keeps 97.9% of correct answers on localgovfaq).
const DefaultMinConfidence = 0.20

// cjkConfidenceScale scales the minimum confidence for CJK languages.
const cjkConfidenceScale = 0.75

// DefaultLimit is the number of hits Search returns when asked for zero or
// fewer: the FAQ bot shows three articles.
const DefaultLimit = 3

// ErrClosed is returned by Search on a closed Index.
var ErrClosed = errors.New("kb: index closed")

// Ranking parameters, tuned on the kbeval development sets.
const (
	// titleBoost and bodyBoost weigh matches in the title (usually the
	// question the article answers) against matches in the body.
	titleBoost = 3.0
	bodyBoost  = 1.0
	// pairBoost weighs matches of consecutive word pairs of the question.
	pairBoost = 0.5
	// candidates is how many hits are fetched from Bleve before the
	// confidence filter is applied.
	candidates = 10
)

// Option configures an Index.
type Option func(*config)

type config struct {
	minConfidence float64
}

// WithMinConfidence sets the confidence below which hits are dropped
// (default DefaultMinConfidence). Zero keeps every hit that matches at least
// one word.
func WithMinConfidence(c float64) Option {
	return func(cfg *config) { cfg.minConfidence = c }
}

// Index is an immutable, in-memory search index over a set of articles,
// with one Bleve index per language. It is safe for concurrent use.
type Index struct {
	cfg   config
	langs map[string]*langIndex
	count int

	mu     sync.RWMutex // held for reading by searches, for writing by Close
	closed bool
}

// langIndex holds the articles of one base language.
type langIndex struct {
	lang     string
	bleve    bleve.Index
	analyzer analysis.Analyzer
	pairs    analysis.Analyzer // nil for CJK languages
	plain    map[string]string // article id → body as plain text
	arts     map[string]*Article
	// terms maps an analyzed term to its id in df; docTerms holds the
	// sorted, distinct term ids of each article (title and body).
	terms    map[string]uint32
	df       []int
	docTerms map[string][]uint32
}

// NewIndex indexes arts. Articles are grouped by BaseLang(Lang) and each
// group gets the analyzer of its language: stemming for English,
// Portuguese, Romanian and Indonesian, CJK bigrams for Japanese and Korean.
// Article IDs must be unique. The caller must Close the index when done.
func NewIndex(arts []Article, opts ...Option) (*Index, error) {
	cfg := config{minConfidence: DefaultMinConfidence}
	for _, o := range opts {
		o(&cfg)
	}
	if len(arts) == 0 {
		return nil, ErrNoArticles
	}
	groups := make(map[string][]*Article)
	seen := make(map[string]bool, len(arts))
	for i := range arts {
		a := &arts[i]
		if seen[a.ID] {
			return nil, fmt.Errorf("build index: duplicate article id %q", a.ID)
		}
		seen[a.ID] = true
		l := BaseLang(a.Lang)
		groups[l] = append(groups[l], a)
	}
	ix := &Index{cfg: cfg, langs: make(map[string]*langIndex, len(groups)), count: len(arts)}
	for l, g := range groups {
		li, err := newLangIndex(l, g)
		if err != nil {
			ix.Close()
			return nil, fmt.Errorf("build %s index: %w", l, err)
		}
		ix.langs[l] = li
	}
	return ix, nil
}

func newLangIndex(lang string, arts []*Article) (*langIndex, error) {
	m := bleve.NewIndexMapping()
	an, err := analyzerFor(m, lang)
	if err != nil {
		return nil, err
	}
	m.DefaultAnalyzer = an
	m.ScoringModel = bleveindex.BM25Scoring
	m.StoreDynamic = false
	m.IndexDynamic = false
	m.DocValuesDynamic = false
	doc := bleve.NewDocumentStaticMapping()
	for _, f := range []string{"title", "body"} {
		fm := bleve.NewTextFieldMapping()
		fm.Analyzer = an
		fm.Store = false
		fm.IncludeInAll = false
		fm.IncludeTermVectors = false
		fm.DocValues = false
		doc.AddFieldMappingsAt(f, fm)
	}
	pan, err := pairAnalyzerFor(m, lang, an)
	if err != nil {
		return nil, err
	}
	if pan != "" {
		fm := bleve.NewTextFieldMapping()
		fm.Analyzer = pan
		fm.Store = false
		fm.IncludeInAll = false
		fm.IncludeTermVectors = false
		fm.DocValues = false
		doc.AddFieldMappingsAt("pairs", fm)
	}
	m.DefaultMapping = doc

	bi, err := bleve.NewUsing("", m, scorch.Name, scorch.Name, nil)
	if err != nil {
		return nil, fmt.Errorf("create bleve index: %w", err)
	}
	li := &langIndex{
		lang:     lang,
		bleve:    bi,
		analyzer: m.AnalyzerNamed(an),
		arts:     make(map[string]*Article, len(arts)),
		plain:    make(map[string]string, len(arts)),
		terms:    make(map[string]uint32),
		docTerms: make(map[string][]uint32, len(arts)),
	}
	if pan != "" {
		li.pairs = m.AnalyzerNamed(pan)
	}
	if li.analyzer == nil {
		_ = bi.Close()
		return nil, fmt.Errorf("analyzer %s not found", an)
	}
	b := bi.NewBatch()
	for _, a := range arts {
		body := plainText(a.Body)
		if err := b.Index(a.ID, map[string]any{"title": a.Title, "body": body, "pairs": a.Title + "\n" + body}); err != nil {
			_ = bi.Close()
			return nil, fmt.Errorf("index article %s: %w", a.ID, err)
		}
		li.arts[a.ID] = a
		li.plain[a.ID] = body
		li.addDocTerms(a.ID, a.Title+"\n"+body)
	}
	if err := bi.Batch(b); err != nil {
		_ = bi.Close()
		return nil, fmt.Errorf("index articles: %w", err)
	}
	return li, nil
}

func (li *langIndex) addDocTerms(id, text string) {
	var ids []uint32
	seen := make(map[uint32]bool)
	for _, tok := range li.analyzer.Analyze([]byte(text)) {
		t, ok := li.terms[string(tok.Term)]
		if !ok {
			t = uint32(len(li.df))
			li.terms[string(tok.Term)] = t
			li.df = append(li.df, 0)
		}
		if !seen[t] {
			seen[t] = true
			ids = append(ids, t)
			li.df[t]++
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	li.docTerms[id] = ids
}

// Len returns the number of indexed articles.
func (ix *Index) Len() int { return ix.count }

// Close releases the index. Searches in flight finish first; later searches
// return ErrClosed.
func (ix *Index) Close() error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return nil
	}
	ix.closed = true
	var errs []error
	for _, li := range ix.langs {
		if li.bleve != nil {
			errs = append(errs, li.bleve.Close())
		}
	}
	return errors.Join(errs...)
}

// Search returns up to limit articles answering query, best first: articles
// in the member's language (a Discord locale such as "pt-BR" or a code such
// as "pt"; see BaseLang) first, then English ones to fill the remaining
// places. Hits below the index's minimum confidence are dropped, so a
// question the knowledge base cannot answer returns no hits and a nil error.
func (ix *Index) Search(ctx context.Context, q string, lang string, limit int) ([]Hit, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return nil, ErrClosed
	}
	if limit <= 0 {
		limit = DefaultLimit
	}
	order := []string{BaseLang(lang)}
	if order[0] != "en" {
		order = append(order, "en")
	}
	var hits []Hit
	for _, l := range order {
		li := ix.langs[l]
		if li == nil {
			continue
		}
		minConf := ix.cfg.minConfidence
		if li.cjk() {
			minConf *= cjkConfidenceScale
		}
		more, err := li.search(ctx, q, limit-len(hits), minConf)
		if err != nil {
			return nil, fmt.Errorf("search %s articles: %w", l, err)
		}
		hits = append(hits, more...)
		if len(hits) >= limit {
			break
		}
	}
	return hits, nil
}

// qterm is an analyzed query term with its weight for the confidence.
type qterm struct {
	text string
	id   uint32
	ok   bool // in the dictionary
	idf  float64
}

func (li *langIndex) idf(df int) float64 {
	n := float64(len(li.arts))
	return math.Log(1 + (n-float64(df)+0.5)/(float64(df)+0.5))
}

// queryTerms analyzes q and returns its distinct terms. A word unknown to
// the dictionary is replaced by a known word one edit away, if any, so that
// common typos still match.
func (li *langIndex) queryTerms(q string) []qterm {
	var out []qterm
	seen := make(map[string]bool)
	for _, tok := range li.analyzer.Analyze([]byte(q)) {
		t := string(tok.Term)
		if seen[t] {
			continue
		}
		seen[t] = true
		id, ok := li.terms[t]
		if !ok {
			if c, found := li.correct(t); found {
				t, id, ok = c, li.terms[c], true
				if seen[t] {
					continue
				}
				seen[t] = true
			}
		}
		qt := qterm{text: t, id: id, ok: ok}
		if ok {
			qt.idf = li.idf(li.df[id])
		} else {
			qt.idf = li.idf(0)
		}
		out = append(out, qt)
	}
	return out
}

// query builds the Bleve query for the analyzed question: a disjunction of
// every known term in the title and in the body, boosted by field, plus the
// question's consecutive word pairs. Bleve's disjunction multiplies the sum
// of the matching clauses by the share of clauses that match, which favours
// articles covering more of the question.
func (li *langIndex) query(q string, terms []qterm) query.Query {
	var clauses []query.Query
	add := func(term, field string, boost float64) {
		tq := bleve.NewTermQuery(term)
		tq.SetField(field)
		tq.SetBoost(boost)
		clauses = append(clauses, tq)
	}
	for _, t := range terms {
		if t.ok {
			add(t.text, "title", titleBoost)
			add(t.text, "body", bodyBoost)
		}
	}
	if len(clauses) == 0 {
		return nil
	}
	if li.pairs != nil {
		seen := make(map[string]bool)
		for _, tok := range li.pairs.Analyze([]byte(q)) {
			if p := string(tok.Term); !seen[p] {
				seen[p] = true
				add(p, "pairs", pairBoost)
			}
		}
	}
	return bleve.NewDisjunctionQuery(clauses...)
}

func (li *langIndex) search(ctx context.Context, q string, limit int, minConf float64) ([]Hit, error) {
	terms := li.queryTerms(q)
	bq := li.query(q, terms)
	if bq == nil {
		return nil, nil
	}
	req := bleve.NewSearchRequestOptions(bq, max(candidates, limit), 0, false)
	// Equal scores are otherwise ordered by Bleve's internal document numbers, which depend on how
	// the index was built; the article id makes the answer to a question the same every time.
	req.SortBy([]string{"-_score", "_id"})
	res, err := li.bleve.SearchInContext(ctx, req)
	if err != nil {
		return nil, err
	}
	var hits []Hit
	for _, h := range res.Hits {
		conf := li.confidence(h.ID, terms)
		if conf < minConf {
			continue
		}
		hits = append(hits, Hit{Article: *li.arts[h.ID], Score: h.Score, Confidence: conf})
		if len(hits) == limit {
			break
		}
	}
	for i := range hits {
		hits[i].Snippet = li.snippet(li.plain[hits[i].ID], terms)
	}
	return hits, nil
}

// confidence is the idf-weighted share of the question's terms that occur
// in the article. Words unknown to the knowledge base count against it
// (the member asked about something it does not cover), except in CJK
// text, where most unknown terms are bigrams spanning two words.
func (li *langIndex) confidence(id string, terms []qterm) float64 {
	doc := li.docTerms[id]
	var got, total float64
	for _, t := range terms {
		if !t.ok {
			if !li.cjk() {
				total += t.idf
			}
			continue
		}
		total += t.idf
		i := sort.Search(len(doc), func(i int) bool { return doc[i] >= t.id })
		if i < len(doc) && doc[i] == t.id {
			got += t.idf
		}
	}
	if total == 0 {
		return 0
	}
	return got / total
}

func (li *langIndex) cjk() bool {
	switch li.lang {
	case "ja", "ko", "zh":
		return true
	}
	return false
}
