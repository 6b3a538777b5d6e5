package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"

	"github.com/flexcord/flexcord/internal/config"
	"github.com/flexcord/flexcord/kb"
	"github.com/flexcord/flexcord/kb/eval"
)

const kbUsage = `Usage:
  flexcord kb eval --corpus FILE --queries FILE [--json] [--min-confidence X]
        index a JSONL corpus, run every labelled query and print P@1, Hit@3,
        MRR@10 and p50/p99 query latency, overall and per query kind
  flexcord kb check [--dir DIR]
        load the knowledge base (--dir, else $KB_DIR, else the embedded
        sample) and print its articles per language and any skipped files
`

// kbCommand implements "flexcord kb": knowledge-base evaluation and checks.
func kbCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, kbUsage)
		return nil
	}
	switch args[0] {
	case "eval":
		return kbEval(ctx, args[1:], stdout, stderr)
	case "check":
		return kbCheck(args[1:], stdout, stderr)
	default:
		fmt.Fprint(stderr, kbUsage)
		return fmt.Errorf("kb: unknown command %q", args[0])
	}
}

func kbEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kb eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	corpus := fs.String("corpus", "", "JSONL corpus: one {\"id\",\"lang\",\"title\",\"body\"} article a line")
	queries := fs.String("queries", "", "JSONL queries: one {\"id\",\"lang\",\"query\",\"relevant\",\"kind\"} a line")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	minConf := fs.Float64("min-confidence", kb.DefaultMinConfidence, "drop hits below this confidence, as the bot does")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *corpus == "" || *queries == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("kb eval: --corpus and --queries are required")
	}
	arts, err := kb.LoadJSONLFile(*corpus)
	if err != nil {
		return fmt.Errorf("kb eval: %w", err)
	}
	qs, err := eval.LoadQueriesFile(*queries)
	if err != nil {
		return fmt.Errorf("kb eval: %w", err)
	}
	rep, err := eval.Run(ctx, arts, qs, kb.WithMinConfidence(*minConf))
	if err != nil {
		return fmt.Errorf("kb eval: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteText(stdout)
}

func kbCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("kb check", stderr)
	b := config.NewBinder(fs)
	dir := new(string)
	b.String(dir, "dir", "KB_DIR", "", "directory of Markdown articles (default: the embedded sample)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("kb check: unexpected argument %q", fs.Arg(0))
	}
	var (
		arts  []kb.Article
		warns []error
		err   error
		from  = "embedded sample"
	)
	if *dir != "" {
		from = *dir
		log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		arts, warns, err = kb.LoadDir(*dir, log)
	} else {
		arts, err = kb.Sample()
	}
	if err != nil {
		return fmt.Errorf("kb check: %w", err)
	}
	counts := make(map[string]int)
	for _, a := range arts {
		counts[a.Lang]++
	}
	langs := make([]string, 0, len(counts))
	for l := range counts {
		langs = append(langs, l)
	}
	sort.Strings(langs)
	fmt.Fprintf(stdout, "%s: %d articles\n", from, len(arts))
	for _, l := range langs {
		fmt.Fprintf(stdout, "  %-6s %d\n", l, counts[l])
	}
	for _, w := range warns {
		fmt.Fprintf(stdout, "skipped: %v\n", w)
	}
	if len(arts) == 0 {
		return fmt.Errorf("kb check: %s: %w", from, kb.ErrNoArticles)
	}
	// Building the index catches problems the loader cannot see.
	ix, err := kb.NewIndex(arts)
	if err != nil {
		return fmt.Errorf("kb check: %w", err)
	}
	return ix.Close()
}
