package ingress_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/internal/payloadcodec"
)

const (
	testCodecToken = "codec-token-0123456789"
	testUIOrigin   = "https://temporal.example.com"
)

func testCodec(t *testing.T) *payloadcodec.Codec {
	t.Helper()
	keys, err := payloadcodec.ParseKeys("k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := payloadcodec.New(keys)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// codecServer serves an ingress with cfg.
func codecServer(t *testing.T, cfg ingress.CodecConfig) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(ingress.New(ingress.Config{Log: slog.New(slog.DiscardHandler), Codec: cfg}).Handler())
	t.Cleanup(srv.Close)
	return srv
}

// codecCall sends payloads to the codec endpoint as the Temporal UI does.
func codecCall(t *testing.T, url, auth string, payloads ...*commonpb.Payload) (*http.Response, []*commonpb.Payload) {
	t.Helper()
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: payloads})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", "default")
	req.Header.Set("Origin", testUIOrigin)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp, nil
	}
	var out commonpb.Payloads
	if err := protojson.Unmarshal(raw, &out); err != nil {
		t.Fatalf("answer %s: %v", raw, err)
	}
	return resp, out.Payloads
}

// TestCodecEndpoint: /codec/decode and /codec/encode follow Temporal's codec server protocol
// behind the bearer token: what the workers encrypted comes back plain, plain payloads come back
// as they are, and nothing is answered without the token.
func TestCodecEndpoint(t *testing.T) {
	codec := testCodec(t)
	srv := codecServer(t, ingress.CodecConfig{Codec: codec, Token: testCodecToken, AllowedOrigins: []string{testUIOrigin}})
	dc := payloadcodec.DataConverter(codec)
	secretWords := "I forgot my password, my email is mika@example.com"
	enc, err := dc.ToPayload(secretWords)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := converter.GetDefaultDataConverter().ToPayload("written before encryption")

	for name, auth := range map[string]string{
		"no token":     "",
		"wrong token":  "Bearer codec-token-0123456780",
		"token prefix": "Bearer " + testCodecToken[:10],
		"basic":        "Basic " + base64.StdEncoding.EncodeToString([]byte("x:"+testCodecToken)),
		"bare token":   testCodecToken,
	} {
		resp, _ := codecCall(t, srv.URL+"/codec/decode", auth, enc)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, resp.StatusCode)
		}
		// The UI reads the status: the answer carries the CORS headers too.
		if resp.Header.Get("Access-Control-Allow-Origin") != testUIOrigin {
			t.Errorf("%s: the 401 has no Access-Control-Allow-Origin", name)
		}
	}

	resp, out := codecCall(t, srv.URL+"/codec/decode", "Bearer "+testCodecToken, enc, plain)
	if resp.StatusCode != http.StatusOK || len(out) != 2 {
		t.Fatalf("decode: %d, %d payloads", resp.StatusCode, len(out))
	}
	var got string
	if err := converter.GetDefaultDataConverter().FromPayload(out[0], &got); err != nil || got != secretWords {
		t.Errorf("decoded %q (%v), want %q", got, err, secretWords)
	}
	if string(out[1].Data) != string(plain.Data) || string(out[1].Metadata[converter.MetadataEncoding]) != "json/plain" {
		t.Errorf("a plain payload came back as %v", out[1])
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != testUIOrigin || resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("CORS headers of the answer: %v", resp.Header)
	}

	// Encode (the UI's "start workflow" and "signal"): what comes back is encrypted, and the
	// workers read it.
	resp, out = codecCall(t, srv.URL+"/codec/encode", "bearer "+testCodecToken, plain)
	if resp.StatusCode != http.StatusOK || len(out) != 1 || string(out[0].Metadata[converter.MetadataEncoding]) != payloadcodec.Encoding {
		t.Fatalf("encode: %d %v", resp.StatusCode, out)
	}
	if err := dc.FromPayload(out[0], &got); err != nil || got != "written before encryption" {
		t.Errorf("the workers read %q (%v) from an encoded payload", got, err)
	}

	// A payload encrypted with a key the endpoint does not have: 400, with the key's id.
	other := payloadcodec.DataConverter(func() *payloadcodec.Codec {
		keys, _ := payloadcodec.ParseKeys("old:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)))
		c, _ := payloadcodec.New(keys)
		return c
	}())
	foreign, _ := other.ToPayload("x")
	if resp, _ := codecCall(t, srv.URL+"/codec/decode", "Bearer "+testCodecToken, foreign); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("decode with an unknown key: %d, want 400", resp.StatusCode)
	}

	// Not the protocol's: other methods and paths.
	for _, c := range []struct{ method, path string }{{http.MethodGet, "/codec/decode"}, {http.MethodPost, "/codec/download"}, {http.MethodPost, "/codec"}} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+testCodecToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %d, want 404 or 405", c.method, c.path, resp.StatusCode)
		}
	}
}

// TestCodecPreflight: the browser's preflight (no credentials) is answered for the UI's origin
// with the methods and headers the Temporal UI sends; other origins are refused.
func TestCodecPreflight(t *testing.T) {
	srv := codecServer(t, ingress.CodecConfig{Codec: testCodec(t), Token: testCodecToken, AllowedOrigins: []string{"http://127.0.0.1:8233", testUIOrigin}})
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/codec/decode", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,x-namespace")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := preflight(testUIOrigin)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("preflight: %d", resp.StatusCode)
	}
	h := resp.Header
	if h.Get("Access-Control-Allow-Origin") != testUIOrigin || h.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("preflight origin headers: %v", h)
	}
	if !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("Access-Control-Allow-Methods %q", h.Get("Access-Control-Allow-Methods"))
	}
	allowed := strings.ToLower(h.Get("Access-Control-Allow-Headers"))
	for _, want := range []string{"content-type", "x-namespace", "authorization"} {
		if !strings.Contains(allowed, want) {
			t.Errorf("Access-Control-Allow-Headers %q lacks %s", allowed, want)
		}
	}
	if !strings.Contains(h.Get("Vary"), "Origin") {
		t.Errorf("Vary %q", h.Get("Vary"))
	}
	resp = preflight("https://evil.example.com")
	if resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.StatusCode/100 == 2 {
		t.Errorf("preflight of another origin: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestCodecEndpointOff: without keys or without a token, there is no codec endpoint.
func TestCodecEndpointOff(t *testing.T) {
	for name, cfg := range map[string]ingress.CodecConfig{
		"no token": {Codec: testCodec(t)},
		"no keys":  {Token: testCodecToken},
		"nothing":  {},
	} {
		srv := codecServer(t, cfg)
		for _, method := range []string{http.MethodPost, http.MethodOptions} {
			req, _ := http.NewRequest(method, srv.URL+"/codec/decode", strings.NewReader(`{"payloads":[]}`))
			req.Header.Set("Authorization", "Bearer "+testCodecToken)
			req.Header.Set("Origin", testUIOrigin)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s: %s /codec/decode = %d, want 404", name, method, resp.StatusCode)
			}
		}
	}
}
