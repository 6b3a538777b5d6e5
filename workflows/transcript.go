package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/internal/i18n"
)

// SendTranscriptInput starts SendTranscript: a member asked for the transcript of their case
// (the *Send me the transcript* button).
type SendTranscriptInput struct {
	UserID string `json:"user_id"`
	CaseID string `json:"case_id"`
	Locale string `json:"locale,omitempty"`
	// EventID is the interaction that asked; it makes the nonce of the DM.
	EventID string `json:"event_id"`
}

// TranscriptWorkflowID is the id of the SendTranscript workflow of a member's case: while one
// runs, another click joins it instead of sending a second file.
func TranscriptWorkflowID(userID, caseID string) string {
	return "transcript:" + userID + ":" + caseID
}

// SendTranscript sends a member the transcript of one of their cases as a file by DM. It runs
// apart from the conversation, which may have ended long before the member asks. When the file
// cannot be sent (no transcript, DMs closed) it says so in its result, which the Temporal UI
// shows; a provider outage is retried for about an hour.
func SendTranscript(ctx workflow.Context, in SendTranscriptInput) (activities.SendTranscriptResult, error) {
	if in.UserID == "" || !ValidCaseID(in.CaseID) {
		return activities.SendTranscriptResult{}, temporal.NewNonRetryableApplicationError("a transcript request needs a member and a case id", "InvalidInput", nil)
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, SearchAttrDiscordUserID.ValueSet(in.UserID), SearchAttrCaseID.ValueSet(in.CaseID))
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		Summary:             "Send the transcript of case " + in.CaseID,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute, MaximumAttempts: 20,
			NonRetryableErrorTypes: []string{activities.ErrTranscriptNotFound, activities.ErrCannotMessageUser},
		},
	})
	var res activities.SendTranscriptResult
	err := workflow.ExecuteActivity(actx, recordActs.SendTranscript, activities.SendTranscriptInput{
		UserID: in.UserID, CaseID: in.CaseID, Nonce: "tr" + in.EventID,
		Content: i18n.T(in.Locale, "transcript.file", "case", in.CaseID),
	}).Get(ctx, &res)
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == activities.ErrTranscriptNotFound {
		// Nothing was kept (or it was erased): the member hears so rather than nothing.
		dctx := workflow.WithActivityOptions(ctx, DeliveryPolicy{}.activityOptions("Tell the member there is no transcript"))
		if derr := workflow.ExecuteActivity(discordCtx(dctx), discordActs.SendDirectMessage, activities.SendDirectMessageInput{
			UserID: in.UserID, Nonce: "tn" + in.EventID,
			Message: activities.Message{Content: i18n.T(in.Locale, "transcript.none", "case", in.CaseID)},
		}).Get(ctx, nil); derr != nil {
			return res, derr
		}
	}
	return res, err
}
