package activities

import "context"

// Discord holds the Discord client; its methods are the Discord activities.
type Discord struct{}

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
