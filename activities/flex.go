package activities

import "context"

// Flex holds the Twilio client; its methods are the Twilio Flex activities.
type Flex struct{}

// CreateFlexInteraction hands a conversation to Flex: a Conversations conversation with the member
// as customer participant, a scoped webhook to ingress, and a Flex interaction whose task carries
// the case. A retry never creates a second conversation.
func (f *Flex) CreateFlexInteraction(ctx context.Context, in CreateFlexInteractionInput) (FlexInteraction, error) {
	return FlexInteraction{}, notConfigured("Twilio")
}

// PostFlexMessage posts a member's message into the Flex conversation as the customer.
func (f *Flex) PostFlexMessage(ctx context.Context, in PostFlexMessageInput) (PostFlexMessageResult, error) {
	return PostFlexMessageResult{}, notConfigured("Twilio")
}

// CloseFlexInteraction closes the interaction channel, which ends the agent's task.
func (f *Flex) CloseFlexInteraction(ctx context.Context, in CloseFlexInteractionInput) error {
	return notConfigured("Twilio")
}
