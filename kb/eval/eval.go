// Package eval measures the retrieval quality and speed of the knowledge-base
// search on a labelled set of queries: precision at 1, hit rate at 3 (the
// FAQ bot shows three articles), mean reciprocal rank at 10 and query
// latency percentiles, overall and per query kind.
package eval

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/flexcord/flexcord/kb"
)

// Query is one labelled question.
type Query struct {
	ID       string   `json:"id"`
	Lang     string   `json:"lang"`
	Query    string   `json:"query"`
	Relevant []string `json:"relevant"`
	Kind     string   `json:"kind,omitempty"`
}

// Metrics are the quality and latency figures of a set of queries.
type Metrics struct {
	Queries int     `json:"queries"`
	P1      float64 `json:"p_at_1"`
	Hit3    float64 `json:"hit_at_3"`
	MRR10   float64 `json:"mrr_at_10"`
	// Answered is the share of queries with at least one hit above the
	// confidence threshold.
	Answered float64 `json:"answered"`
	// LatencyP50 and LatencyP99 are query latency percentiles.
	LatencyP50 time.Duration `json:"latency_p50_ns"`
	LatencyP99 time.Duration `json:"latency_p99_ns"`
}

// Report is the result of an evaluation run.
type Report struct {
	Articles int                 `json:"articles"`
	Overall  Metrics             `json:"overall"`
	ByKind   map[string]*Metrics `json:"by_kind,omitempty"`
}

// Depth is the number of hits requested per query (MRR is cut at 10).
const Depth = 10

// Run indexes arts with opts, runs every query through Index.Search in the
// query's language and scores the ranked hits against the relevant ids.
// Queries run one at a time so that latencies are not distorted by
// contention.
func Run(ctx context.Context, arts []kb.Article, queries []Query, opts ...kb.Option) (*Report, error) {
	ix, err := kb.NewIndex(arts, opts...)
	if err != nil {
		return nil, fmt.Errorf("index corpus: %w", err)
	}
	defer ix.Close()

	type result struct {
		kind    string
		rank    int // 1-based rank of the first relevant hit, 0 if none
		answers bool
		took    time.Duration
	}
	results := make([]result, 0, len(queries))
	for _, q := range queries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := time.Now()
		hits, err := ix.Search(ctx, q.Query, q.Lang, Depth)
		took := time.Since(start)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", q.ID, err)
		}
		r := result{kind: q.Kind, answers: len(hits) > 0, took: took}
		for i, h := range hits {
			if contains(q.Relevant, h.ID) {
				r.rank = i + 1
				break
			}
		}
		results = append(results, r)
	}

	rep := &Report{Articles: ix.Len(), ByKind: make(map[string]*Metrics)}
	acc := func(rs []result) Metrics {
		var m Metrics
		m.Queries = len(rs)
		if len(rs) == 0 {
			return m
		}
		lat := make([]time.Duration, 0, len(rs))
		for _, r := range rs {
			if r.rank == 1 {
				m.P1++
			}
			if r.rank >= 1 && r.rank <= 3 {
				m.Hit3++
			}
			if r.rank >= 1 && r.rank <= 10 {
				m.MRR10 += 1 / float64(r.rank)
			}
			if r.answers {
				m.Answered++
			}
			lat = append(lat, r.took)
		}
		n := float64(len(rs))
		m.P1, m.Hit3, m.MRR10, m.Answered = m.P1/n, m.Hit3/n, m.MRR10/n, m.Answered/n
		m.LatencyP50, m.LatencyP99 = Percentile(lat, 50), Percentile(lat, 99)
		return m
	}
	rep.Overall = acc(results)
	kinds := make(map[string][]result)
	for _, r := range results {
		if r.kind != "" {
			kinds[r.kind] = append(kinds[r.kind], r)
		}
	}
	for k, rs := range kinds {
		m := acc(rs)
		rep.ByKind[k] = &m
	}
	return rep, nil
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// Percentile returns the p-th percentile (nearest rank) of ds, which it
// sorts in place.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	rank := int(float64(len(ds))*p/100 + 0.999999)
	rank = min(max(rank, 1), len(ds))
	return ds[rank-1]
}

// LoadQueries reads a queries file: one JSON Query a line.
func LoadQueries(r io.Reader) ([]Query, error) {
	return kb.DecodeJSONL(r, "queries", func(q Query) error {
		if q.Query == "" || len(q.Relevant) == 0 {
			return errors.New("query needs a query text and relevant ids")
		}
		return nil
	})
}

// LoadQueriesFile is LoadQueries on the named file.
func LoadQueriesFile(name string) ([]Query, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("load queries: %w", err)
	}
	defer f.Close()
	qs, err := LoadQueries(f)
	if err != nil {
		return nil, fmt.Errorf("load queries %s: %w", name, err)
	}
	return qs, nil
}

// WriteText writes rep as a small table: one row overall, one per kind.
func (rep *Report) WriteText(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d articles\n", rep.Articles)
	fmt.Fprintf(&b, "%-10s %7s %6s %6s %7s %8s %9s %9s\n", "kind", "queries", "P@1", "Hit@3", "MRR@10", "answered", "p50", "p99")
	row := func(name string, m Metrics) {
		fmt.Fprintf(&b, "%-10s %7d %6.3f %6.3f %7.3f %8.3f %9s %9s\n", name, m.Queries, m.P1, m.Hit3, m.MRR10, m.Answered,
			m.LatencyP50.Round(time.Microsecond), m.LatencyP99.Round(time.Microsecond))
	}
	row("all", rep.Overall)
	kinds := make([]string, 0, len(rep.ByKind))
	for k := range rep.ByKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		row(k, *rep.ByKind[k])
	}
	_, err := w.Write(b.Bytes())
	return err
}
