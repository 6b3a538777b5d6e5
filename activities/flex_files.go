package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"net/http"

	conversations "github.com/twilio/twilio-go/rest/conversations/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/flexcord/flexcord/internal/twilioclient"
)

// fileKey is the delivery key of the i-th file of a delivery.
func fileKey(key string, i int) string {
	if key == "" {
		return ""
	}
	return fmt.Sprintf("%s.f%d", key, i+1)
}

// postFiles posts each file as a media message of its own after the delivery's text (res), in
// order, each marked with its own key so that a retry finds what an earlier attempt posted. A file
// that cannot be had (too large, gone) is replaced by a note the agent reads. When the delivery
// has no text, the first file's message is the delivery's own (res.MessageSID, res.Index).
func (f *Flex) postFiles(ctx context.Context, in PostFlexMessageInput, files []File, res PostFlexMessageResult) (PostFlexMessageResult, error) {
	op := "post an attachment to Flex conversation " + in.ConversationSID
	for i, file := range files {
		key := fileKey(in.DeliveryKey, i)
		if key != "" && (flexAttempt(ctx) > 1 || in.PriorAttempts > 0) {
			found, ok, err := f.findDelivery(in.ConversationSID, key)
			if err != nil {
				return res, classifyConversation(ctx, "look for an earlier attempt in Flex conversation "+in.ConversationSID, err)
			}
			if ok {
				res = withFileIndex(res, ptrVal(found.Sid), found.Index)
				continue
			}
		}
		params := &conversations.CreateConversationMessageParams{}
		attrs, err := json.Marshal(map[string]string{DeliveryMarker: key, "origin": "discord", "filename": file.Name})
		if err != nil {
			return res, fmt.Errorf("encode message attributes: %w", err)
		}
		params.SetAuthor(in.Identity).SetAttributes(string(attrs)).SetXTwilioWebhookEnabled("false")
		sid, err := f.uploadFile(ctx, in.ConversationSID, file)
		var gone *errFileUnavailable
		switch {
		case errors.As(err, &gone):
			f.log.Warn("attachment not passed on to Flex", "conversation", in.ConversationSID, "file", file.Name, "reason", gone.reason)
			params.SetBody(fileNote(file.Name, gone.reason))
		case err != nil:
			return res, err
		default:
			params.SetMediaSid(sid)
		}
		msg, err := f.rc.ConversationsV1.CreateConversationMessage(in.ConversationSID, params)
		if err != nil {
			return res, classifyConversation(ctx, op, err)
		}
		res = withFileIndex(res, ptrVal(msg.Sid), msg.Index)
	}
	return res, nil
}

func withFileIndex(res PostFlexMessageResult, sid string, index int) PostFlexMessageResult {
	if res.MessageSID == "" {
		res.MessageSID, res.Index = sid, index
		return res
	}
	res.FileIndexes = append(res.FileIndexes, index)
	return res
}

// uploadFile puts a member's attachment into the conversation's Conversation Service and returns
// its media SID.
func (f *Flex) uploadFile(ctx context.Context, conversationSID string, file File) (string, error) {
	if f.Files == nil || f.rc.Media == nil {
		return "", &errFileUnavailable{"this worker cannot pass files on"}
	}
	data, ct, err := f.Files.load(ctx, file)
	if err != nil {
		return "", err
	}
	service, err := f.serviceOf(ctx, conversationSID)
	if err != nil {
		return "", err
	}
	m, err := f.rc.Media.Upload(ctx, service, file.Name, ct, data)
	if err != nil {
		return "", classifyMedia(ctx, "upload "+file.Name+" to Twilio", err)
	}
	return m.SID, nil
}

// serviceOf returns the Conversation Service of a conversation (its chat_service_sid), which the
// Media Content Service's URLs name.
func (f *Flex) serviceOf(ctx context.Context, conversationSID string) (string, error) {
	f.mu.Lock()
	s, ok := f.services[conversationSID]
	f.mu.Unlock()
	if ok {
		return s, nil
	}
	conv, err := f.rc.ConversationsV1.FetchConversation(conversationSID)
	if err != nil {
		return "", classifyConversation(ctx, "fetch Flex conversation "+conversationSID, err)
	}
	s = ptrVal(conv.ChatServiceSid)
	f.mu.Lock()
	if f.services == nil || len(f.services) > 10_000 {
		f.services = map[string]string{}
	}
	f.services[conversationSID] = s
	f.mu.Unlock()
	return s, nil
}

// classifyMedia turns a Media Content Service failure into what the delivery does with it: a
// refusal (a 4xx other than 429: too large, a type Twilio does not take) puts a note in the
// file's place; the rest is retried.
func classifyMedia(ctx context.Context, op string, err error) error {
	var me *twilioclient.MediaError
	if errors.As(err, &me) && me.Status/100 == 4 && me.Status != http.StatusTooManyRequests {
		return &errFileUnavailable{fmt.Sprintf("Twilio refused it (%s)", me.Message)}
	}
	activity.GetLogger(ctx).Warn(op, "error", err)
	return temporal.NewApplicationError(op+": "+err.Error(), ErrTwilioUnavailable)
}
