package devserver

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestUIFrontForwardsCodecCalls: the UI's address sends /codec/encode and /codec/decode of the
// UI's own pages to the codec endpoint with the bearer token (and without the UI's cookies), and
// everything else to the UI server.
func TestUIFrontForwardsCodecCalls(t *testing.T) {
	type seen struct{ path, auth, cookie, body string }
	calls := make(chan seen, 4)
	codec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		calls <- seen{r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Cookie"), string(b)}
		_, _ = w.Write([]byte(`{"payloads":[]}`))
	}))
	defer codec.Close()
	ui := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ui " + r.Method + " " + r.URL.Path + " host " + r.Host))
	}))
	defer ui.Close()
	target, _ := url.Parse(codec.URL + "/codec")
	front := httptest.NewServer(uiFront(ui.URL, target, "tok-123"))
	defer front.Close()

	for _, op := range []string{"decode", "encode"} {
		req, _ := http.NewRequest(http.MethodPost, front.URL+"/codec/"+op+"?preserveStorageRefs=true", strings.NewReader(`{"payloads":[]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Cookie", "_csrf=ui-cookie")
		req.Header.Set("Origin", front.URL) // the UI's own page
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /codec/%s: %d", op, resp.StatusCode)
		}
		got := <-calls
		if got.path != "/codec/"+op || got.auth != "Bearer tok-123" || got.cookie != "" || got.body != `{"payloads":[]}` {
			t.Errorf("the codec endpoint got %+v", got)
		}
	}
	// Another site's page in the same browser: refused, not forwarded.
	req, _ := http.NewRequest(http.MethodPost, front.URL+"/codec/decode", strings.NewReader(`{"payloads":[]}`))
	req.Header.Set("Origin", "https://evil.example.com")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-origin codec call: %d, want 403", resp.StatusCode)
	}
	for _, c := range []struct{ method, path string }{{http.MethodGet, "/namespaces/default/workflows"}, {http.MethodGet, "/codec/decode"}, {http.MethodPost, "/api/v1/namespaces"}} {
		req, _ := http.NewRequest(c.method, front.URL+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "ui " + c.method + " " + c.path + " host " + strings.TrimPrefix(front.URL, "http://"); string(b) != want {
			t.Errorf("%s %s reached %q, want %q", c.method, c.path, b, want)
		}
	}
	select {
	case got := <-calls:
		t.Errorf("the codec endpoint got %+v", got)
	default:
	}
}
