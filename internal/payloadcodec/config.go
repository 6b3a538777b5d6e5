package payloadcodec

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
)

// The variables that turn encryption on. Set one of them, not both.
const (
	// EnvKeys holds the keys inline: "id:base64key[,id:base64key…]".
	EnvKeys = "FLEXCORD_PAYLOAD_KEYS"
	// EnvKeyFile names a file of keys (see ParseKeyFile).
	EnvKeyFile = "FLEXCORD_PAYLOAD_KEY_FILE"
)

// ParseKeyFile reads keys in the form of a FLEXCORD_PAYLOAD_KEY_FILE: the form of
// FLEXCORD_PAYLOAD_KEYS, with entries separated by commas, line breaks or both; blank lines and
// lines starting with # are skipped. The first key encrypts.
func ParseKeyFile(data string) ([]Key, error) {
	var entries []string
	for line := range strings.Lines(data) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for e := range strings.SplitSeq(line, ",") {
			if e = strings.TrimSpace(e); e != "" {
				entries = append(entries, e)
			}
		}
	}
	if len(entries) == 0 {
		return nil, errors.New("no key in it")
	}
	return ParseKeys(strings.Join(entries, ","))
}

// ReadKeyFile reads a key file (see ParseKeyFile) and returns a Codec over its keys.
func ReadKeyFile(path string) (*Codec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	keys, err := ParseKeyFile(string(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return New(keys)
}

// FromEnv returns the Codec that FLEXCORD_PAYLOAD_KEYS or FLEXCORD_PAYLOAD_KEY_FILE describe, as
// lookup reads them (os.LookupEnv), or nil when neither is set: payloads are then written plain.
// A malformed key, a duplicate id or both variables set is an error naming the variable.
func FromEnv(lookup func(string) (string, bool)) (*Codec, error) {
	inline, _ := lookup(EnvKeys)
	file, _ := lookup(EnvKeyFile)
	inline, file = strings.TrimSpace(inline), strings.TrimSpace(file)
	switch {
	case inline != "" && file != "":
		return nil, fmt.Errorf("%s and %s are both set: set one", EnvKeys, EnvKeyFile)
	case inline != "":
		keys, err := ParseKeys(inline)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvKeys, err)
		}
		return New(keys)
	case file != "":
		c, err := ReadKeyFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvKeyFile, err)
		}
		return c, nil
	}
	return nil, nil
}

// GenerateKey returns a new random key in the form of FLEXCORD_PAYLOAD_KEYS: "id:base64key".
func GenerateKey(id string) (string, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", err
	}
	spec := id + ":" + base64.StdEncoding.EncodeToString(secret)
	if _, err := ParseKeys(spec); err != nil {
		return "", err
	}
	return spec, nil
}

// KeyIDs returns the ids of the codec's keys, the encrypting one first.
func (c *Codec) KeyIDs() []string {
	ids := make([]string, len(c.keys))
	for i, k := range c.keys {
		ids[i] = k.ID
	}
	return ids
}

// DataConverter is Temporal's default data converter with c on top: what it writes is encrypted,
// and it reads both encrypted and plain payloads. A nil c gives the default data converter.
func DataConverter(c *Codec) converter.DataConverter {
	if c == nil {
		return converter.GetDefaultDataConverter()
	}
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// FailureConverter converts errors to failures with dc and, when c is set, moves their messages
// and stack traces into an encrypted payload as well (failure messages can quote what a call
// carried, such as the URL of an interaction follow-up, which holds the interaction's token). It
// reads failures written either way.
func FailureConverter(c *Codec) converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter: DataConverter(c), EncodeCommonAttributes: c != nil,
	})
}

// Explain adds what to do to an error of reading a payload encrypted by this codec without its
// keys (the data converter's "payload encoding is not supported").
func Explain(err error) error {
	if err == nil || !strings.Contains(err.Error(), Encoding) {
		return err
	}
	return fmt.Errorf("%w (the history is encrypted: give this command the same %s or %s as the workers)", err, EnvKeys, EnvKeyFile)
}
