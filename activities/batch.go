package activities

// SendEach sends the DMs of in one by one, in order, with send: in itself, then each of in.More
// as an input of its own. It stops at the first failure and returns it with what was sent
// before; a retry finds the DMs already sent by their nonces. Discord.SendDirectMessage and
// stand-ins for it in tests share it, so that they batch alike.
func SendEach(in SendDirectMessageInput, send func(SendDirectMessageInput) (SendDirectMessageResult, error)) (SendDirectMessageResult, error) {
	more := in.More
	in.More = nil
	res, err := send(in)
	if err != nil {
		return res, err
	}
	for _, m := range more {
		one, err := send(SendDirectMessageInput{UserID: in.UserID, Nonce: m.Nonce, Message: m.Message,
			PriorAttempts: m.PriorAttempts, FirstTriedAt: m.FirstTriedAt})
		if err != nil {
			return res, err
		}
		res.More = append(res.More, one)
	}
	return res, nil
}

// PostEach posts the messages of in one by one, in order, with post: in itself, then each of
// in.More as an input of its own. It stops at the first failure and returns it with what was
// posted before; a retry finds the messages already posted by their delivery keys.
func PostEach(in PostFlexMessageInput, post func(PostFlexMessageInput) (PostFlexMessageResult, error)) (PostFlexMessageResult, error) {
	more := in.More
	in.More = nil
	res, err := post(in)
	if err != nil {
		return res, err
	}
	for _, m := range more {
		one, err := post(PostFlexMessageInput{ConversationSID: in.ConversationSID, Identity: in.Identity,
			Body: m.Body, Files: m.Files, DeliveryKey: m.DeliveryKey, PriorAttempts: m.PriorAttempts})
		if err != nil {
			return res, err
		}
		res.More = append(res.More, one)
	}
	return res, nil
}
