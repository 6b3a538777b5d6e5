package eval_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flexcord/flexcord/kb"
	"github.com/flexcord/flexcord/kb/eval"
)

// kbevalDir is where the (unshipped) evaluation sets live, relative to
// this package.
var kbevalDir = filepath.Join("..", "..", "..", "shared", "kbeval")

// targets are the Hit@3 goals on the development queries.
var targets = map[string]float64{
	"stackfaq":    0.90,
	"aia-bde":     0.90,
	"localgovfaq": 0.55,
}

func loadSet(tb testing.TB, set string) ([]kb.Article, []eval.Query) {
	tb.Helper()
	dir := filepath.Join(kbevalDir, set)
	if _, err := os.Stat(dir); err != nil {
		tb.Skipf("evaluation set %s not present: %v", set, err)
	}
	arts, err := kb.LoadJSONLFile(filepath.Join(dir, "corpus.jsonl"))
	if err != nil {
		tb.Fatal(err)
	}
	qs, err := eval.LoadQueriesFile(filepath.Join(dir, "queries-dev.jsonl"))
	if err != nil {
		tb.Fatal(err)
	}
	return arts, qs
}

// TestKBEvalTargets checks the retrieval targets on the kbeval development
// queries, with the production confidence threshold in place.
func TestKBEvalTargets(t *testing.T) {
	for set, want := range targets {
		t.Run(set, func(t *testing.T) {
			arts, qs := loadSet(t, set)
			rep, err := eval.Run(context.Background(), arts, qs)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			if err := rep.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s:\n%s", set, b.String())
			if rep.Overall.Hit3 < want {
				t.Errorf("Hit@3 = %.3f, want >= %.2f", rep.Overall.Hit3, want)
			}
		})
	}
}

// BenchmarkSearch measures the latency of one query on the largest kbeval
// set (localgovfaq, 1,786 Japanese articles), cycling through its queries.
func BenchmarkSearch(b *testing.B) {
	for _, set := range []string{"localgovfaq", "stackfaq"} {
		b.Run(set, func(b *testing.B) {
			arts, qs := loadSet(b, set)
			ix, err := kb.NewIndex(arts)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { ix.Close() })
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				q := qs[i%len(qs)]
				if _, err := ix.Search(ctx, q.Query, q.Lang, kb.DefaultLimit); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
