// Package payloadcodec encrypts the payloads flexcord writes into Temporal histories (signals,
// activity inputs and results, memos, query results) with AES-256-GCM, so that members' words and
// interaction tokens are not readable by whoever can read the namespace.
//
// Keys have ids so that they can be rotated: the first key of a Codec encrypts, and every key
// decrypts. A payload that is not encrypted (written before encryption was turned on) passes
// through Decode unchanged, so existing histories keep working.
package payloadcodec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// Encoding is the metadata encoding of an encrypted payload; its data is the nonce followed by
// the AES-256-GCM sealed bytes of the whole original payload (metadata and data).
const Encoding = "binary/encrypted"

// MetadataKeyID names the key that encrypted a payload.
const MetadataKeyID = "encryption-key-id"

// Key is one AES-256 key and its id.
type Key struct {
	ID   string
	aead cipher.AEAD
}

// NewKey makes a Key from a 32-byte secret.
func NewKey(id string, secret []byte) (Key, error) {
	if id == "" || strings.ContainsAny(id, ":,") {
		return Key{}, fmt.Errorf("key id %q: want a non-empty id without ':' or ','", id)
	}
	if len(secret) != 32 {
		return Key{}, fmt.Errorf("key %s: %d bytes, want 32 (AES-256)", id, len(secret))
	}
	block, err := aes.NewCipher(secret)
	if err != nil {
		return Key{}, fmt.Errorf("key %s: %w", id, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return Key{}, fmt.Errorf("key %s: %w", id, err)
	}
	return Key{ID: id, aead: aead}, nil
}

// ParseKeys reads keys in the form of FLEXCORD_PAYLOAD_KEYS: "id:base64key[,id:base64key…]",
// each key 32 bytes in standard base64. The first one encrypts.
func ParseKeys(s string) ([]Key, error) {
	var keys []Key
	seen := map[string]bool{}
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		id, b64, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("payload key %d: want id:base64key", i+1)
		}
		secret, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
		if err != nil {
			return nil, fmt.Errorf("payload key %s: not standard base64: %w", id, err)
		}
		k, err := NewKey(strings.TrimSpace(id), secret)
		if err != nil {
			return nil, fmt.Errorf("payload %w", err)
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("payload key %s appears twice", k.ID)
		}
		seen[k.ID] = true
		keys = append(keys, k)
	}
	return keys, nil
}

// Codec is a converter.PayloadCodec that encrypts with its first key and decrypts with any.
type Codec struct {
	keys []Key
	byID map[string]Key
}

var _ converter.PayloadCodec = (*Codec)(nil)

// New returns a Codec over keys; the first one encrypts.
func New(keys []Key) (*Codec, error) {
	if len(keys) == 0 {
		return nil, errors.New("payload codec: no key")
	}
	c := &Codec{keys: keys, byID: map[string]Key{}}
	for _, k := range keys {
		c.byID[k.ID] = k
	}
	return c, nil
}

// Encode encrypts every payload with the first key.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	k := c.keys[0]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encode payload: %w", err)
		}
		nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plain)+k.aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return nil, fmt.Errorf("encrypt payload: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{converter.MetadataEncoding: []byte(Encoding), MetadataKeyID: []byte(k.ID)},
			Data:     k.aead.Seal(nonce, nonce, plain, []byte(k.ID)),
		}
	}
	return out, nil
}

// Decode decrypts the encrypted payloads and passes the others through unchanged.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != Encoding {
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[MetadataKeyID])
		k, ok := c.byID[id]
		if !ok {
			return nil, fmt.Errorf("decrypt payload: it was encrypted with key %q, which is not among the configured keys", id)
		}
		n := k.aead.NonceSize()
		if len(p.GetData()) < n {
			return nil, fmt.Errorf("decrypt payload (key %s): too short", id)
		}
		plain, err := k.aead.Open(nil, p.Data[:n], p.Data[n:], []byte(id))
		if err != nil {
			return nil, fmt.Errorf("decrypt payload (key %s): %w", id, err)
		}
		var orig commonpb.Payload
		if err := proto.Unmarshal(plain, &orig); err != nil {
			return nil, fmt.Errorf("decrypt payload (key %s): %w", id, err)
		}
		out[i] = &orig
	}
	return out, nil
}
