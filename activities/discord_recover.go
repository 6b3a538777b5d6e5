package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/bwmarrin/discordgo"
	"go.temporal.io/sdk/activity"
)

// nonceWindow is how long SendDirectMessage trusts Discord's enforce_nonce to return the message
// an earlier attempt created. Discord documents only "the past few minutes"; past this window a
// retried delivery looks for its message in the channel before sending.
const nonceWindow = 2 * time.Minute

// lookBackLimit is how many of the DM channel's messages after the first try are searched for an
// earlier attempt's message (one page of GET /channels/{id}/messages).
const lookBackLimit = 50

// clockSkewAllowance widens the search to messages created shortly before FirstTriedAt, which
// comes from the worker's clock while message ids carry Discord's.
const clockSkewAllowance = 2 * time.Second

// discordEpochMS is the first millisecond of 2015, the epoch of Discord snowflakes.
const discordEpochMS = 1420070400000

// mayHaveSent reports whether an earlier attempt of this delivery may have created its messages
// so long ago that enforce_nonce no longer finds them.
func (d *Discord) mayHaveSent(ctx context.Context, in SendDirectMessageInput) bool {
	if in.FirstTriedAt.IsZero() || (in.PriorAttempts <= 0 && discordAttempt(ctx) <= 1) {
		return false
	}
	now := time.Now
	if d.now != nil {
		now = d.now
	}
	return now().Sub(in.FirstTriedAt) > nonceWindow
}

// discordAttempt is the activity's attempt number, 1 outside an activity.
func discordAttempt(ctx context.Context) int32 {
	if activity.IsActivity(ctx) {
		return activity.GetInfo(ctx).Attempt
	}
	return 1
}

// snowflakeAt returns the smallest Discord id of the given time, for the after parameter.
func snowflakeAt(t time.Time) string {
	ms := max(t.UnixMilli()-discordEpochMS, 0)
	return strconv.FormatInt(ms<<22, 10)
}

// fetchedMessage is the part of a fetched message the look-back compares. discordgo's Message has
// no nonce, and Discord may or may not return it on fetched messages.
type fetchedMessage struct {
	ID      string          `json:"id"`
	Content string          `json:"content"`
	Author  *discordgo.User `json:"author"`
	Nonce   json.RawMessage `json:"nonce"`
	Embeds  []struct {
		Title string `json:"title"`
	} `json:"embeds"`
}

// nonce returns the message's nonce as a string ("" if absent).
func (m *fetchedMessage) nonce() string {
	if len(m.Nonce) == 0 || string(m.Nonce) == "null" {
		return ""
	}
	var s string
	if err := json.Unmarshal(m.Nonce, &s); err == nil {
		return s
	}
	var n json.Number
	if err := json.Unmarshal(m.Nonce, &n); err == nil {
		return n.String()
	}
	return ""
}

// matches reports whether m is the message created for body: the same nonce when Discord
// returned one, else the same content (and, for a message without text, the same embed titles).
func (m *fetchedMessage) matches(b *messageBody) bool {
	if n := m.nonce(); n != "" {
		return n == b.Nonce
	}
	if m.Content != b.Content {
		return false
	}
	if b.Content != "" {
		return true
	}
	if len(m.Embeds) != len(b.Embeds) || len(b.Embeds) == 0 {
		return false
	}
	for i, e := range b.Embeds {
		if m.Embeds[i].Title != e.Title {
			return false
		}
	}
	return true
}

// findDelivered looks among the bot's messages in the DM channel created since firstTried for the
// messages of this delivery, one per body in order, and returns the ids of the leading bodies it
// found: all of them when an earlier attempt delivered the whole message, a prefix when it
// stopped part-way through a split message, none when it delivered nothing.
func (d *Discord) findDelivered(ctx context.Context, channelID, userID string, firstTried time.Time, bodies []*messageBody) ([]string, error) {
	endpoint := discordgo.EndpointChannelMessages(channelID)
	uri := fmt.Sprintf("%s?limit=%d&after=%s", endpoint, lookBackLimit, snowflakeAt(firstTried.Add(-clockSkewAllowance)))
	raw, err := d.s.RequestWithBucketID(http.MethodGet, uri, nil, endpoint, discordgo.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	var msgs []fetchedMessage
	if err := json.Unmarshal(raw, &msgs); err != nil {
		return nil, fmt.Errorf("decode the channel's messages: %w", err)
	}
	// Discord lists newest first; the route does not promise an order for after, so sort by id.
	slices.SortFunc(msgs, func(a, b fetchedMessage) int { return compareSnowflakes(a.ID, b.ID) })
	var found []string
	for i := range msgs {
		m := &msgs[i]
		if len(found) == len(bodies) {
			break
		}
		if m.Author == nil || !m.Author.Bot || m.Author.ID == userID {
			continue
		}
		if m.matches(bodies[len(found)]) {
			found = append(found, m.ID)
		}
	}
	return found, nil
}

// compareSnowflakes orders two Discord ids (decimal strings without leading zeros).
func compareSnowflakes(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
