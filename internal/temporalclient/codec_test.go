package temporalclient

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/flexcord/flexcord/internal/payloadcodec"
)

func key(id string, b byte) string {
	return id + ":" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32))
}

// encrypts reports whether the client options write a value encrypted, and read it back.
func encrypts(t *testing.T, co client.Options) bool {
	t.Helper()
	if co.DataConverter == nil {
		return false
	}
	p, err := co.DataConverter.ToPayload("member words")
	if err != nil {
		t.Fatal(err)
	}
	var back string
	if err := co.DataConverter.FromPayload(p, &back); err != nil || back != "member words" {
		t.Fatalf("round trip: %q, %v", back, err)
	}
	return string(p.Metadata[converter.MetadataEncoding]) == payloadcodec.Encoding && !bytes.Contains(p.Data, []byte("member words"))
}

// TestPayloadKeysFromEnv: every client built from the environment (worker, ingress, gateway, the
// operator commands) encrypts with FLEXCORD_PAYLOAD_KEYS or FLEXCORD_PAYLOAD_KEY_FILE; a bad key
// stops it with an error naming the variable; the embedded server's clients (IgnoreEnv) take
// their codec from Options only.
func TestPayloadKeysFromEnv(t *testing.T) {
	t.Setenv(payloadcodec.EnvKeys, "")
	t.Setenv(payloadcodec.EnvKeyFile, "")
	base := Options{HostPort: "127.0.0.1:7233"}
	co, err := ClientOptions(base)
	if err != nil {
		t.Fatal(err)
	}
	if encrypts(t, co) || co.FailureConverter != nil {
		t.Error("a client without keys encrypts")
	}

	t.Setenv(payloadcodec.EnvKeys, key("k2", 2)+","+key("k1", 1))
	if co, err = ClientOptions(base); err != nil {
		t.Fatal(err)
	}
	if !encrypts(t, co) || co.FailureConverter == nil {
		t.Error("a client with FLEXCORD_PAYLOAD_KEYS does not encrypt")
	}
	// Search attributes are not the data converter's: the SDK writes them plain, for the index.

	ignoring := base
	ignoring.IgnoreEnv = true
	if co, err = ClientOptions(ignoring); err != nil || encrypts(t, co) {
		t.Errorf("IgnoreEnv: %v; the client encrypts with the environment's keys", err)
	}
	keys, _ := payloadcodec.ParseKeys(key("explicit", 3))
	codec, _ := payloadcodec.New(keys)
	ignoring.PayloadCodec = codec
	if co, err = ClientOptions(ignoring); err != nil || !encrypts(t, co) {
		t.Errorf("IgnoreEnv with a PayloadCodec: %v; the client does not encrypt", err)
	}

	for _, bad := range []string{"k1:bm90IDMyIGJ5dGVz", "k1", key("k", 1) + "," + key("k", 2), "k1:not base64!"} {
		t.Setenv(payloadcodec.EnvKeys, bad)
		if _, err := ClientOptions(base); err == nil || !strings.Contains(err.Error(), "FLEXCORD_PAYLOAD_KEYS") {
			t.Errorf("FLEXCORD_PAYLOAD_KEYS=%s: %v, want an error naming the variable", bad, err)
		}
		if _, _, err := Dial(Options{HostPort: "127.0.0.1:1", Lazy: true}); err == nil {
			t.Errorf("Dial with FLEXCORD_PAYLOAD_KEYS=%s succeeded", bad)
		}
	}
}
