package payloadcodec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

// TestParseKeyFile: one key per line, comma-separated, or both; comments and blank lines skipped;
// the first key encrypts.
func TestParseKeyFile(t *testing.T) {
	file := "# flexcord payload keys\n\n2026:" + secret(2) + "\n  2025:" + secret(1) + " , 2024:" + secret(3) + ",\n"
	keys, err := ParseKeyFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	if strings.Join(ids, ",") != "2026,2025,2024" {
		t.Errorf("ids = %v, want 2026,2025,2024", ids)
	}
	for data, want := range map[string]string{
		"# nothing\n\n": "no key",
		"a:" + secret(1) + "\na:" + secret(2) + "\n": "twice",
		"a:" + secret(1) + "\nb:short\n":             "b",
	} {
		if _, err := ParseKeyFile(data); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseKeyFile(%q) = %v, want an error containing %q", data, err, want)
		}
	}
}

// TestFromEnv: no variable, no codec; either variable gives the codec; both, or a bad key, is an
// error naming the variable.
func TestFromEnv(t *testing.T) {
	if c, err := FromEnv(env(nil)); c != nil || err != nil {
		t.Errorf("without keys: %v, %v; want nil, nil", c, err)
	}
	c, err := FromEnv(env(map[string]string{EnvKeys: "k2:" + secret(2) + ",k1:" + secret(1)}))
	if err != nil || strings.Join(c.KeyIDs(), ",") != "k2,k1" {
		t.Fatalf("inline keys: %v, %v", c, err)
	}
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte("f1:"+secret(5)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := FromEnv(env(map[string]string{EnvKeyFile: path})); err != nil || strings.Join(c.KeyIDs(), ",") != "f1" {
		t.Errorf("key file: %v, %v", c, err)
	}
	for name, vars := range map[string]map[string]string{
		EnvKeys + " and " + EnvKeyFile: {EnvKeys: "a:" + secret(1), EnvKeyFile: path},
		EnvKeys:                        {EnvKeys: "a:c2hvcnQ="},
		EnvKeyFile:                     {EnvKeyFile: filepath.Join(t.TempDir(), "missing")},
	} {
		if _, err := FromEnv(env(vars)); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("FromEnv(%v) = %v, want an error naming %s", vars, err, name)
		}
	}
}

func TestGenerateKey(t *testing.T) {
	a, err := GenerateKey("dev")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateKey("dev")
	if a == b || !strings.HasPrefix(a, "dev:") {
		t.Errorf("generated %q and %q", a, b)
	}
	if _, err := ParseKeys(a); err != nil {
		t.Error(err)
	}
}

// TestFailureMessagesAreEncrypted: with keys, an error's message travels in an encrypted payload
// (it can quote a URL holding an interaction token) and comes back whole; without keys it stays
// in the clear.
func TestFailureMessagesAreEncrypted(t *testing.T) {
	const msg = "Post https://discord.com/api/v10/webhooks/1/aW50ZXJhY3Rpb24tdG9rZW4/messages/@original: EOF"
	fc := FailureConverter(codec(t, "k:"+secret(7)))
	f := fc.ErrorToFailure(temporal.NewApplicationError(msg, "NetworkError"))
	if strings.Contains(f.String(), "aW50ZXJhY3Rpb24tdG9rZW4") {
		t.Errorf("the failure holds the token in the clear: %v", f)
	}
	if enc := f.GetEncodedAttributes(); enc == nil || string(enc.Metadata[converter.MetadataEncoding]) != Encoding {
		t.Errorf("encoded attributes %v, want an encrypted payload", enc)
	}
	var appErr *temporal.ApplicationError
	if err := fc.FailureToError(f); !errors.As(err, &appErr) || appErr.Message() != msg || appErr.Type() != "NetworkError" {
		t.Errorf("decoded %v, want the original error", err)
	}
	if f := FailureConverter(nil).ErrorToFailure(errors.New(msg)); f.GetMessage() != msg {
		t.Errorf("without keys the message is %q", f.GetMessage())
	}
}

func TestExplainNamesTheKeys(t *testing.T) {
	err := fmt.Errorf("payload item 0: encoding %s: payload encoding is not supported", Encoding)
	if got := Explain(err).Error(); !strings.Contains(got, EnvKeys) || !strings.Contains(got, EnvKeyFile) {
		t.Errorf("Explain = %q: want it to name the key variables", got)
	}
	if other := errors.New("deadline exceeded"); Explain(other) != other {
		t.Errorf("Explain changed an unrelated error")
	}
}
