package kb_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/flexcord/flexcord/kb"
)

func sampleIndex(t testing.TB) *kb.Index {
	t.Helper()
	arts, err := kb.Sample()
	if err != nil {
		t.Fatal(err)
	}
	ix, err := kb.NewIndex(arts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	return ix
}

func TestSampleCounts(t *testing.T) {
	arts, err := kb.Sample()
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, a := range arts {
		count[a.Lang]++
		if !strings.HasPrefix(a.URL, "https://help.example.com/") {
			t.Errorf("%s: url %q", a.ID, a.URL)
		}
	}
	want := map[string]int{"en": 30, "ko": 5, "ja": 5, "ro": 5, "id": 5, "pt-BR": 5}
	for lang, n := range want {
		if count[lang] < n {
			t.Errorf("%d %s articles, want at least %d", count[lang], lang, n)
		}
	}
}

func TestSearchSample(t *testing.T) {
	ix := sampleIndex(t)
	tests := []struct {
		lang, query, want string
	}{
		{"en-US", "i forgot my password and can't get in", "en/login/forgot-password"},
		{"en-GB", "how can I get my money back for gems I bought by mistake", "en/purchases/refund"},
		{"en-US", "my kid bought stuff without asking me", "en/parental/spending-limit"},
		{"en-US", "someone scammed me in a trade", "en/trading/trade-scam"},
		{"en-US", "game crashes every time I open it", "en/bugs/game-crashes"},
		{"en-US", "how to cancel my star pass subscription", "en/purchases/cancel-subscription"},
		{"en-US", "I want to delete my account permanently", "en/account/delete-account"},
		{"en-US", "pasword reset email never arrives", "en/login/forgot-password"}, // typo
		{"ko", "비밀번호를 잊어버렸는데 어떻게 하죠?", "ko/login/forgot-password"},
		{"ko", "환불 받고 싶어요", "ko/purchases/refund"},
		{"ja", "ゲームがすぐに落ちてしまいます", "ja/bugs/game-crashes"},
		{"ja", "パスワードを忘れた", "ja/login/forgot-password"},
		{"ro", "cum pot raporta un jucator care trișează?", "ro/safety/report-player"},
		{"ro", "vreau banii inapoi pentru o achizitie", "ro/purchases/refund"},
		{"id", "bagaimana cara melaporkan pemain curang", "id/safety/report-player"},
		{"id", "game saya keluar sendiri terus", "id/bugs/game-crashes"},
		{"pt-BR", "esqueci a senha da minha conta", "pt-br/login/forgot-password"},
		{"pt-BR", "como colocar controle dos pais no jogo do meu filho", "pt-br/parental/parental-controls"},
		{"pt", "quero o reembolso de uma compra", "pt-br/purchases/refund"},
	}
	for _, tt := range tests {
		t.Run(tt.lang+"/"+tt.query, func(t *testing.T) {
			hits, err := ix.Search(context.Background(), tt.query, tt.lang, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(hits) == 0 {
				t.Fatalf("no hits, want %s", tt.want)
			}
			if hits[0].ID != tt.want {
				t.Fatalf("hits %v, want %s first", ids(hits), tt.want)
			}
			if hits[0].Snippet == "" || strings.ContainsAny(hits[0].Snippet, "*#") || len([]rune(hits[0].Snippet)) > 201 {
				t.Errorf("snippet %q: want short plain text", hits[0].Snippet)
			}
		})
	}
}

func TestSearchFallsBackToEnglish(t *testing.T) {
	ix := sampleIndex(t)
	// Korean member, English question about a topic with no Korean article.
	hits, err := ix.Search(context.Background(), "how do guild wars work", "ko", 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) == 0 || hits[0].ID != "en/events/guild-wars" {
		t.Fatalf("hits %v, want en/events/guild-wars first", ids(hits))
	}
	// Member's language first, then English.
	hits, err = ix.Search(context.Background(), "パスワード password reset", "ja", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) == 0 || hits[0].ID != "ja/login/forgot-password" {
		t.Fatalf("hits %v, want ja/login/forgot-password first", ids(hits))
	}
	english := false
	for _, h := range hits {
		switch {
		case h.Lang == "en":
			english = true
		case english:
			t.Fatalf("hits %v: %s after an English article", ids(hits), h.ID)
		}
	}
	if !english {
		t.Errorf("hits %v: no English fallback", ids(hits))
	}
}

func ids(hits []kb.Hit) []string {
	var out []string
	for _, h := range hits {
		out = append(out, h.ID)
	}
	return out
}

func TestSearchNothingGood(t *testing.T) {
	ix := sampleIndex(t)
	for _, q := range []string{"purple elephant quantum banana", "what is the capital of France", "", "???"} {
		for _, lang := range []string{"en", "ko", "pt-BR"} {
			hits, err := ix.Search(context.Background(), q, lang, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(hits) != 0 {
				t.Errorf("Search(%q, %s) = %d hits (first %s, confidence %.2f), want none", q, lang, len(hits), hits[0].ID, hits[0].Confidence)
			}
		}
	}
}

func TestSnippetHasMatchedWords(t *testing.T) {
	ix := sampleIndex(t)
	hits, err := ix.Search(context.Background(), "cache storage", "en", 1)
	if err != nil || len(hits) == 0 {
		t.Fatalf("hits %v, err %v", hits, err)
	}
	if s := strings.ToLower(hits[0].Snippet); !strings.Contains(s, "cache") {
		t.Errorf("snippet %q does not contain the matched word", hits[0].Snippet)
	}
}

func TestLoadDirSkipsMalformed(t *testing.T) {
	arts, warns, err := kb.LoadDir("testdata/kb", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(arts) != 1 || arts[0].ID != "en/good" || arts[0].Lang != "en" || arts[0].URL == "" || len(arts[0].Tags) != 1 {
		t.Errorf("articles = %+v, want only en/good", arts)
	}
	if len(warns) != 2 {
		t.Fatalf("warnings = %v, want 2", warns)
	}
	all := errors.Join(warns...).Error()
	for _, f := range []string{"en/broken.md", "ko/no-lang.md"} {
		if !strings.Contains(all, f) {
			t.Errorf("warnings %q do not name %s", all, f)
		}
	}
}

func TestLoadJSONL(t *testing.T) {
	arts, err := kb.LoadJSONL(strings.NewReader(`{"id":"a","lang":"pt","title":"T","body":"B"}` + "\n\n" + `{"id":"b","lang":"ja","title":"T2","body":"B2"}` + "\n"))
	if err != nil || len(arts) != 2 || arts[1].Lang != "ja" {
		t.Fatalf("arts %+v, err %v", arts, err)
	}
	if _, err := kb.LoadJSONL(strings.NewReader("{\"id\":\"a\"}\nnot json\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("err = %v, want an error naming line 1", err)
	}
}

func writeArticle(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestStoreReload(t *testing.T) {
	dir := t.TempDir()
	writeArticle(t, dir, "en/pets.md", "---\ntitle: How do I feed my dragon?\nlang: en\n---\nDragons eat moon berries from the market.\n")
	s, err := kb.NewStore(kb.DirSource(dir, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	search := func(q string) []kb.Hit {
		t.Helper()
		hits, err := s.Search(ctx, q, "en", 3)
		if err != nil {
			t.Fatal(err)
		}
		return hits
	}
	if hits := search("feed dragon"); len(hits) != 1 {
		t.Fatalf("before reload: %d hits, want 1", len(hits))
	}

	// Concurrent searches keep working while the index is swapped.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Search(ctx, "dragon", "en", 3); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	writeArticle(t, dir, "en/castle.md", "---\ntitle: How do I upgrade my castle?\nlang: en\n---\nUse stone and gold in the castle menu.\n")
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if hits := search("upgrade castle"); len(hits) != 1 || hits[0].ID != "en/castle" {
		t.Fatalf("after reload: %+v, want en/castle", hits)
	}

	// A failed reload keeps the old index.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil {
		t.Fatal("Reload of a missing directory succeeded")
	}
	if hits := search("upgrade castle"); len(hits) != 1 {
		t.Fatalf("after failed reload: %d hits, want the old index", len(hits))
	}
	// So does a reload where every article is malformed.
	writeArticle(t, dir, "en/bad.md", "no front matter")
	if err := s.Reload(); !errors.Is(err, kb.ErrNoArticles) {
		t.Fatalf("Reload = %v, want ErrNoArticles", err)
	}
	if hits := search("feed dragon"); len(hits) != 1 {
		t.Fatalf("after failed reload: %d hits, want the old index", len(hits))
	}
}

func TestBaseLang(t *testing.T) {
	for in, want := range map[string]string{"pt-BR": "pt", "pt": "pt", "en-US": "en", "ko": "ko", "ja": "ja", "ro": "ro", "id": "id", "": "en", "zh_TW": "zh", "IN": "id"} {
		if got := kb.BaseLang(in); got != want {
			t.Errorf("BaseLang(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkSearchSample measures query latency on the embedded sample.
func BenchmarkSearchSample(b *testing.B) {
	ix := sampleIndex(b)
	qs := []struct{ q, lang string }{
		{"i forgot my password", "en"},
		{"refund for gems", "en"},
		{"게임이 자꾸 튕겨요", "ko"},
		{"パスワードを忘れた", "ja"},
		{"esqueci minha senha", "pt-BR"},
	}
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		q := qs[i%len(qs)]
		if _, err := ix.Search(ctx, q.q, q.lang, kb.DefaultLimit); err != nil {
			b.Fatal(err)
		}
	}
}
