package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flexcord/flexcord/kb"
)

const tinyDir = "../../kb/eval/testdata"

func TestKBEval(t *testing.T) {
	args := []string{"eval", "--corpus", filepath.Join(tinyDir, "tiny-corpus.jsonl"), "--queries", filepath.Join(tinyDir, "tiny-queries.jsonl")}

	t.Run("text", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if err := kbCommand(context.Background(), args, &out, &errOut); err != nil {
			t.Fatalf("kbCommand: %v (stderr %s)", err, errOut.String())
		}
		text := out.String()
		for _, want := range []string{"4 articles", "P@1", "Hit@3", "MRR@10", "p99",
			"all              5  0.400  0.600   0.500", "easy             2  1.000  1.000   1.000", "hard             3  0.000  0.333   0.167"} {
			if !strings.Contains(text, want) {
				t.Errorf("output lacks %q:\n%s", want, text)
			}
		}
	})

	t.Run("json", func(t *testing.T) {
		var out bytes.Buffer
		if err := kbCommand(context.Background(), append(args, "--json"), &out, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
		var rep struct {
			Overall struct {
				Queries int     `json:"queries"`
				P1      float64 `json:"p_at_1"`
				Hit3    float64 `json:"hit_at_3"`
				MRR10   float64 `json:"mrr_at_10"`
			} `json:"overall"`
			ByKind map[string]json.RawMessage `json:"by_kind"`
		}
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, out.String())
		}
		o := rep.Overall
		if o.Queries != 5 || math.Abs(o.P1-0.4) > 1e-9 || math.Abs(o.Hit3-0.6) > 1e-9 || math.Abs(o.MRR10-0.5) > 1e-9 || len(rep.ByKind) != 2 {
			t.Errorf("report %+v", rep)
		}
	})

	t.Run("missing flags", func(t *testing.T) {
		if err := kbCommand(context.Background(), []string{"eval", "--corpus", "x"}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Error("eval without --queries succeeded")
		}
	})
}

func TestKBCheck(t *testing.T) {
	t.Run("sample", func(t *testing.T) {
		t.Setenv("KB_DIR", "")
		var out bytes.Buffer
		if err := kbCommand(context.Background(), []string{"check"}, &out, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"embedded sample", "en", "pt-BR", "ko", "ja", "ro", "id"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q:\n%s", want, out.String())
			}
		}
	})
	t.Run("dir with a malformed article", func(t *testing.T) {
		dir := t.TempDir()
		write := func(name, content string) {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write("ok.md", "---\ntitle: Hello\nlang: en\n---\nBody.\n")
		write("bad.md", "---\ntitle: no end\n")
		t.Setenv("KB_DIR", dir)
		var out, errOut bytes.Buffer
		if err := kbCommand(context.Background(), []string{"check"}, &out, &errOut); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "1 articles") || !strings.Contains(out.String(), "bad.md") {
			t.Errorf("output:\n%s", out.String())
		}
	})
	t.Run("nothing loads", func(t *testing.T) {
		err := kbCommand(context.Background(), []string{"check", "--dir", t.TempDir()}, &bytes.Buffer{}, &bytes.Buffer{})
		if !errors.Is(err, kb.ErrNoArticles) {
			t.Errorf("err = %v, want ErrNoArticles", err)
		}
	})
}
