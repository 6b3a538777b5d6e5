package activities

import (
	"cmp"
	"context"
	"net/url"
	"slices"
	"strings"

	conversations "github.com/twilio/twilio-go/rest/conversations/v1"
	"go.temporal.io/sdk/temporal"
)

// Conversations states (conversations.v1 conversation_enum_state).
const (
	conversationActive   = "active"
	conversationInactive = "inactive"
)

// CheckFlexInteraction says whether Flex still has a hand-over's chat: the conversation's state,
// the interaction channel's status (when the interaction is known) and the index of the newest
// message. A conversation Flex no longer has (20404) is reported, not an error: ConversationState
// is empty and Open false. Open is true while the conversation is active or inactive and the
// channel is neither closed nor failed. Twilio failures are retryable errors.
func (f *Flex) CheckFlexInteraction(ctx context.Context, in CheckFlexInteractionInput) (CheckFlexInteractionResult, error) {
	if f.rc == nil {
		return CheckFlexInteractionResult{}, notConfigured("Twilio")
	}
	fi := in.Interaction
	out := CheckFlexInteractionResult{LastIndex: -1}
	if fi.ConversationSID == "" {
		return out, temporal.NewNonRetryableApplicationError("check Flex interaction: the conversation sid is required", ErrTwilioRejected, nil)
	}
	conv, err := f.rc.ConversationsV1.FetchConversation(fi.ConversationSID)
	switch {
	case err == nil:
		out.ConversationState = ptrVal(conv.State)
	case twilioCode(err) != twNotFound:
		return out, classifyTwilio(ctx, "fetch Flex conversation "+fi.ConversationSID, err)
	}
	if fi.InteractionSID != "" && fi.ChannelSID != "" {
		ch, err := f.rc.FlexV1.FetchInteractionChannel(fi.InteractionSID, fi.ChannelSID)
		switch {
		case err == nil:
			out.ChannelStatus = ptrVal(ch.Status)
		case twilioCode(err) != twNotFound:
			return out, classifyTwilio(ctx, "fetch Flex interaction channel "+fi.InteractionSID+"/"+fi.ChannelSID, err)
		}
	}
	if out.ConversationState != "" {
		params := &conversations.ListConversationMessageParams{}
		params.SetOrder("desc").SetPageSize(1)
		page, err := f.rc.ConversationsV1.PageConversationMessage(fi.ConversationSID, params, "", "")
		switch {
		case err == nil:
			if len(page.Messages) > 0 {
				out.LastIndex = page.Messages[0].Index
			}
		case twilioCode(err) == twNotFound: // lost between the two calls
			out.ConversationState = ""
		default:
			return out, classifyTwilio(ctx, "list the messages of Flex conversation "+fi.ConversationSID, err)
		}
	}
	out.Open = (out.ConversationState == conversationActive || out.ConversationState == conversationInactive) &&
		out.ChannelStatus != channelClosed && out.ChannelStatus != channelFailed
	return out, nil
}

// Bounds of FetchAgentMessages: at most this many messages returned, read in pages of this size,
// and at most this many pages read (newest first) looking for AfterIndex.
const (
	flexAgentMessagesMax = 200
	flexMessagePageSize  = 100
	flexMessagePagesMax  = 50
)

// FetchAgentMessages returns the agent's messages of a Flex conversation with an index above
// in.AfterIndex, oldest first and at most 200: what the workflow missed when webhooks were lost.
// Messages of the member (authored by a "discord:" identity) and messages flexcord posted (their
// attributes carry DeliveryMarker) are left out. LastIndex is the index of the last message
// looked at, agent's or not, so that a next call continues after it; AfterIndex when there is
// none. A conversation Flex no longer has fails for good with ErrFlexConversationGone.
func (f *Flex) FetchAgentMessages(ctx context.Context, in FetchAgentMessagesInput) (FetchAgentMessagesResult, error) {
	if f.rc == nil {
		return FetchAgentMessagesResult{}, notConfigured("Twilio")
	}
	out := FetchAgentMessagesResult{Messages: []AgentMessage{}, LastIndex: in.AfterIndex}
	op := "fetch agent messages of Flex conversation " + in.ConversationSID
	if in.ConversationSID == "" {
		return out, temporal.NewNonRetryableApplicationError(op+": the conversation sid is required", ErrTwilioRejected, nil)
	}
	// Newest first, until a page reaches AfterIndex: a gap is usually short, and the API has no
	// "after" filter.
	var newer []conversations.ConversationsV1ConversationMessage
	params := &conversations.ListConversationMessageParams{}
	params.SetOrder("desc").SetPageSize(flexMessagePageSize)
	pageToken, pageNumber := "", ""
	for pages := 1; ; pages++ {
		page, err := f.rc.ConversationsV1.PageConversationMessage(in.ConversationSID, params, pageToken, pageNumber)
		if err != nil {
			return out, classifyConversation(ctx, op, err)
		}
		reached := false
		for _, m := range page.Messages {
			if m.Index <= in.AfterIndex {
				reached = true
				break
			}
			newer = append(newer, m)
		}
		next := ptrVal(page.Meta.NextPageUrl)
		if reached || next == "" || len(page.Messages) == 0 {
			break
		}
		if pages >= flexMessagePagesMax {
			f.log.Warn("too many messages since the last known one; returning the oldest of the newest",
				"conversation", in.ConversationSID, "after_index", in.AfterIndex, "read", len(newer))
			break
		}
		if pageToken, pageNumber, err = nextPage(next); err != nil {
			return out, temporal.NewApplicationError(op+": "+err.Error(), ErrTwilioUnavailable)
		}
	}
	slices.SortFunc(newer, func(a, b conversations.ConversationsV1ConversationMessage) int { return a.Index - b.Index })
	for _, m := range newer {
		if len(out.Messages) == flexAgentMessagesMax {
			break
		}
		out.LastIndex = m.Index
		if strings.HasPrefix(ptrVal(m.Author), CustomerIdentityPrefix) {
			continue
		}
		if _, marked := deliveryKeyOf(ptrVal(m.Attributes)); marked {
			continue
		}
		am := AgentMessage{SID: ptrVal(m.Sid), Index: m.Index, Body: ptrVal(m.Body)}
		if m.Media != nil && len(*m.Media) > 0 {
			service, err := f.serviceOf(ctx, in.ConversationSID)
			if err != nil {
				return out, err
			}
			am.Files = messageMedia(*m.Media, service)
		}
		out.Messages = append(out.Messages, am)
	}
	return out, nil
}

// messageMedia reads a message's media list ({sid, content_type, filename, size}).
func messageMedia(media []any, serviceSID string) []File {
	var out []File
	for _, v := range media {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		sid, _ := m["sid"].(string)
		if sid == "" {
			continue
		}
		name, _ := m["filename"].(string)
		ct, _ := m["content_type"].(string)
		size, _ := m["size"].(float64)
		out = append(out, File{Name: cmp.Or(name, sid), ContentType: ct, Size: int64(size), MediaSID: sid, ServiceSID: serviceSID})
	}
	return out
}

// nextPage reads the PageToken and Page of a list answer's meta.next_page_url.
func nextPage(nextPageURL string) (pageToken, pageNumber string, err error) {
	u, err := url.Parse(nextPageURL)
	if err != nil {
		return "", "", err
	}
	q := u.Query()
	return q.Get("PageToken"), q.Get("Page"), nil
}
