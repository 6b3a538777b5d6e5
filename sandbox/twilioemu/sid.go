package twilioemu

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// SID prefixes used by the emulator.
const (
	prefixConversation = "CH"
	prefixParticipant  = "MB"
	prefixWebhook      = "WH"
	prefixMessage      = "IM"
	prefixInteraction  = "KD"
	prefixChannel      = "UO"
	prefixChannelPart  = "UT"
	prefixInvite       = "KG"
	prefixTask         = "WT"
	prefixReservation  = "WR"
	prefixEvent        = "EV"
	prefixChatService  = "IS"
	prefixWorkspace    = "WS"
	prefixWorkflow     = "WW"
	prefixWorker       = "WK"
	prefixTaskQueue    = "WQ"
	prefixTaskChannel  = "TC"
	prefixActivity     = "WA"
	prefixRequest      = "RQ"
	prefixMedia        = "ME"
)

// newSID returns prefix followed by 32 random lower-case hex digits.
func newSID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return prefix + hex.EncodeToString(b[:])
}

// newToken returns a random idempotency token in the UUID layout.
func newToken() string {
	s := newSID("")
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

// isSID reports whether s looks like a SID with the given prefix.
func isSID(s, prefix string) bool {
	return len(s) == 34 && s[:2] == prefix && sidPattern.MatchString(s)
}

// apiTime formats t as Twilio's REST API does: RFC 3339, UTC, seconds.
func apiTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// hookTime formats t as Conversations webhooks do: RFC 3339 with
// milliseconds, e.g. 2021-08-11T17:30:55.860Z.
func hookTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }
