package i18n

import (
	"strings"
	"testing"
)

func TestEveryCatalogHasEveryKey(t *testing.T) {
	for _, lang := range Languages() {
		for _, key := range Keys() {
			if !Has(lang, key) {
				t.Errorf("catalog %s is missing key %q", lang, key)
			}
		}
	}
}

func TestPlaceholdersMatchEnglish(t *testing.T) {
	for _, lang := range Languages() {
		for _, key := range Keys() {
			want := placeholders(catalogs[Fallback][key])
			got := placeholders(catalogs[lang][key])
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("%s %q: placeholders %v, English has %v", lang, key, got, want)
			}
		}
	}
}

func placeholders(s string) []string {
	var out []string
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			break
		}
		out = append(out, s[i:i+j+1])
		s = s[i+j+1:]
	}
	// Order may differ between languages.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func TestMatch(t *testing.T) {
	tests := []struct{ locale, want string }{
		{"en-US", "en-US"},
		{"en-GB", "en-US"},
		{"", Fallback},
		{"xx", Fallback},
	}
	for _, tt := range tests {
		if got := Match(tt.locale); got != tt.want {
			t.Errorf("Match(%q) = %q, want %q", tt.locale, got, tt.want)
		}
	}
}

func TestT(t *testing.T) {
	got := T("en-GB", "agent.joined", "agent", "Ana")
	if got != "Ana joined the conversation." {
		t.Fatalf("T = %q", got)
	}
	if got := T("en-US", "no.such.key"); got != "no.such.key" {
		t.Fatalf("missing key = %q", got)
	}
}

func TestWantsHuman(t *testing.T) {
	yes := []string{"agent", "Can I talk to a HUMAN please?", "real person!!"}
	no := []string{"", "my agentic build fails", "humane society", "how do I trade items"}
	for _, s := range yes {
		if !WantsHuman(s) {
			t.Errorf("WantsHuman(%q) = false", s)
		}
	}
	for _, s := range no {
		if WantsHuman(s) {
			t.Errorf("WantsHuman(%q) = true", s)
		}
	}
}
