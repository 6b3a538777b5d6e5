package devstack

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/flexcord/flexcord/internal/payloadcodec"
)

// The files `flexcord dev` keeps its generated secrets in, in its data directory: they stay
// across restarts, so that the histories already written stay readable.
const (
	// PayloadKeyFile holds the payload key, in the form of FLEXCORD_PAYLOAD_KEY_FILE.
	PayloadKeyFile = "payload-keys"
	// CodecTokenFile holds the codec endpoint's bearer token.
	CodecTokenFile = "codec-token"
)

// LoadOrCreatePayloadKeys returns the codec of dir/payload-keys, writing a new random key there
// first when the file does not exist (created is then true).
func LoadOrCreatePayloadKeys(dir string) (codec *payloadcodec.Codec, path string, created bool, err error) {
	path = filepath.Join(dir, PayloadKeyFile)
	created, err = createOnce(path, func() (string, error) {
		key, err := payloadcodec.GenerateKey("dev")
		if err != nil {
			return "", err
		}
		return "# Payload key of flexcord dev (FLEXCORD_PAYLOAD_KEY_FILE form). Deleting it makes the\n" +
			"# histories of this data directory unreadable.\n" + key + "\n", nil
	})
	if err != nil {
		return nil, path, false, err
	}
	codec, err = payloadcodec.ReadKeyFile(path)
	return codec, path, created, err
}

// LoadOrCreateCodecToken returns the token in dir/codec-token, writing a new random one there
// first when the file does not exist (created is then true).
func LoadOrCreateCodecToken(dir string) (token, path string, created bool, err error) {
	path = filepath.Join(dir, CodecTokenFile)
	created, err = createOnce(path, func() (string, error) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		return base64.RawURLEncoding.EncodeToString(b) + "\n", nil
	})
	if err != nil {
		return "", path, false, err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", path, false, err
	}
	if token = strings.TrimSpace(string(raw)); token == "" {
		return "", path, false, fmt.Errorf("%s is empty: delete it to have a new token made", path)
	}
	return token, path, created, nil
}

// createOnce writes the content generate returns to path, readable by its owner only, unless path
// exists.
func createOnce(path string, generate func() (string, error)) (bool, error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	content, err := generate()
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil // written meanwhile by another process
	}
	if err != nil {
		return false, err
	}
	if _, err := f.WriteString(content); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return false, err
	}
	return true, f.Close()
}
