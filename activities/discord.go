package activities

import (
	"context"

	"go.temporal.io/sdk/temporal"
)

// Discord holds the Discord client; its methods are the Discord activities.
type Discord struct{}

func notConfigured(provider string) error {
	return temporal.NewNonRetryableApplicationError(provider+" is not configured on this worker", ErrNotConfigured, nil)
}

// SendDirectMessage sends a direct message to a member, opening (and caching) the DM channel.
func (d *Discord) SendDirectMessage(ctx context.Context, in SendDirectMessageInput) (SendDirectMessageResult, error) {
	return SendDirectMessageResult{}, notConfigured("Discord")
}

// PostChannelMessage posts a message in a guild channel.
func (d *Discord) PostChannelMessage(ctx context.Context, in PostChannelMessageInput) (PostChannelMessageResult, error) {
	return PostChannelMessageResult{}, notConfigured("Discord")
}

// SendInteractionFollowUp sends a follow-up message to an acknowledged interaction.
func (d *Discord) SendInteractionFollowUp(ctx context.Context, in SendInteractionFollowUpInput) (SendInteractionFollowUpResult, error) {
	return SendInteractionFollowUpResult{}, notConfigured("Discord")
}
