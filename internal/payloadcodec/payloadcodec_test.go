package payloadcodec

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

func secret(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }

func codec(t *testing.T, spec string) *Codec {
	t.Helper()
	keys, err := ParseKeys(spec)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(keys)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type message struct {
	Text  string `json:"text"`
	Token string `json:"token"`
}

// TestRoundTripHidesTheText: through a data converter with the codec, a value comes back as it
// went in, and the stored payload holds neither its words nor its token.
func TestRoundTripHidesTheText(t *testing.T) {
	dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), codec(t, "k1:"+secret(1)))
	in := message{Text: "Esqueci minha senha", Token: "aW50ZXJhY3Rpb24tdG9rZW4"}
	ps, err := dc.ToPayloads(in)
	if err != nil {
		t.Fatal(err)
	}
	raw := ps.Payloads[0]
	if string(raw.Metadata[converter.MetadataEncoding]) != Encoding || string(raw.Metadata[MetadataKeyID]) != "k1" {
		t.Errorf("metadata = %q", raw.Metadata)
	}
	for _, s := range []string{in.Text, in.Token, "json/plain"} {
		if bytes.Contains(raw.Data, []byte(s)) {
			t.Errorf("the stored payload contains %q", s)
		}
	}
	var out message
	if err := dc.FromPayloads(ps, &out); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Errorf("decoded %+v, want %+v", out, in)
	}
	again, _ := dc.ToPayloads(in)
	if bytes.Equal(again.Payloads[0].Data, raw.Data) {
		t.Error("the same value encrypted twice gave the same bytes (nonce reused)")
	}
}

// TestRotation: payloads written with an old key still decode once a new key encrypts; without
// the old key, decoding fails with an error that names it.
func TestRotation(t *testing.T) {
	old := codec(t, "2025:"+secret(1))
	rotated := codec(t, "2026:"+secret(2)+", 2025:"+secret(1))
	newOnly := codec(t, "2026:"+secret(2))
	p := &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte("json/plain")}, Data: []byte(`"hello"`)}
	enc, err := old.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := rotated.Decode(enc)
	if err != nil || string(dec[0].Data) != `"hello"` {
		t.Fatalf("decode with the rotated keys: %v, %q", err, dec)
	}
	if enc2, _ := rotated.Encode([]*commonpb.Payload{p}); string(enc2[0].Metadata[MetadataKeyID]) != "2026" {
		t.Errorf("the rotated codec encrypted with %q, want the first key, 2026", enc2[0].Metadata[MetadataKeyID])
	}
	if _, err := newOnly.Decode(enc); err == nil || !strings.Contains(err.Error(), `"2025"`) {
		t.Errorf("decode without the old key: %v, want an error naming key 2025", err)
	}
}

// TestPlainPayloadsPassThrough: histories written before encryption keep decoding.
func TestPlainPayloadsPassThrough(t *testing.T) {
	p := &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte("json/plain")}, Data: []byte(`"hi"`)}
	dec, err := codec(t, "k:"+secret(3)).Decode([]*commonpb.Payload{p})
	if err != nil || dec[0] != p {
		t.Errorf("decode of a plain payload: %v, %v", err, dec)
	}
}

// TestTamperedPayloadFails: a changed byte or a changed key id is caught.
func TestTamperedPayloadFails(t *testing.T) {
	c := codec(t, "a:"+secret(4)+",b:"+secret(4))
	enc, _ := c.Encode([]*commonpb.Payload{{Data: []byte("x")}})
	flipped := &commonpb.Payload{Metadata: enc[0].Metadata, Data: bytes.Clone(enc[0].Data)}
	flipped.Data[len(flipped.Data)-1] ^= 1
	if _, err := c.Decode([]*commonpb.Payload{flipped}); err == nil {
		t.Error("a flipped byte decoded")
	}
	// The same secret under another id: the id is authenticated, so it does not decode.
	moved := &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(Encoding), MetadataKeyID: []byte("b")}, Data: enc[0].Data}
	if _, err := c.Decode([]*commonpb.Payload{moved}); err == nil {
		t.Error("a payload relabelled with another key id decoded")
	}
	short := &commonpb.Payload{Metadata: enc[0].Metadata, Data: []byte{1, 2}}
	if _, err := c.Decode([]*commonpb.Payload{short}); err == nil {
		t.Error("a truncated payload decoded")
	}
}

func TestParseKeysErrors(t *testing.T) {
	for spec, want := range map[string]string{
		"k1":             "want id:base64key",
		"k1:not base64!": "not standard base64",
		"k1:" + base64.StdEncoding.EncodeToString([]byte("short")): "want 32",
		"k1:" + secret(1) + ",k1:" + secret(2):                     "twice",
		":" + secret(1):                                            "non-empty id",
	} {
		_, err := ParseKeys(spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseKeys(%q) = %v, want an error containing %q", spec, err, want)
		}
	}
	if _, err := New(nil); err == nil {
		t.Error("New without keys succeeded")
	}
}
