package eval_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/flexcord/flexcord/kb"
	"github.com/flexcord/flexcord/kb/eval"
)

// The tiny corpus has known answers: q1 and q2 find their article first;
// q3 is labelled with an article that does not match it at all; q4's
// article ranks second (a2 has "refund" in its title, a3 only "phone" in
// its body); q5 matches nothing.
//
//	query  rank  kind
//	q1     1     easy
//	q2     1     easy
//	q3     -     hard  (answered, but with the wrong article)
//	q4     2     hard
//	q5     -     hard  (not answered)
func TestRunTinyCorpus(t *testing.T) {
	arts, err := kb.LoadJSONLFile("testdata/tiny-corpus.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	qs, err := eval.LoadQueriesFile("testdata/tiny-queries.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := eval.Run(context.Background(), arts, qs)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Articles != 4 {
		t.Errorf("Articles = %d, want 4", rep.Articles)
	}
	tests := []struct {
		name                    string
		got                     eval.Metrics
		n                       int
		p1, hit3, mrr, answered float64
	}{
		{"overall", rep.Overall, 5, 2.0 / 5, 3.0 / 5, (1 + 1 + 0.5) / 5, 4.0 / 5},
		{"easy", *rep.ByKind["easy"], 2, 1, 1, 1, 1},
		{"hard", *rep.ByKind["hard"], 3, 0, 1.0 / 3, 0.5 / 3, 2.0 / 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.got
			if m.Queries != tt.n {
				t.Errorf("Queries = %d, want %d", m.Queries, tt.n)
			}
			for _, c := range []struct {
				name      string
				got, want float64
			}{{"P@1", m.P1, tt.p1}, {"Hit@3", m.Hit3, tt.hit3}, {"MRR@10", m.MRR10, tt.mrr}, {"answered", m.Answered, tt.answered}} {
				if math.Abs(c.got-c.want) > 1e-9 {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
			if m.LatencyP50 <= 0 || m.LatencyP99 < m.LatencyP50 {
				t.Errorf("latencies p50 %v p99 %v", m.LatencyP50, m.LatencyP99)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := eval.Percentile(ds, c.p); got != c.want {
			t.Errorf("Percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := eval.Percentile(nil, 50); got != 0 {
		t.Errorf("Percentile(nil) = %v, want 0", got)
	}
}
