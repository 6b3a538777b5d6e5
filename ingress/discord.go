package ingress

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/mux"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/flexcord/flexcord/internal/i18n"
	"github.com/flexcord/flexcord/workflows"
)

// DiscordConfig configures the Discord side of ingress: the HTTP interactions route and the
// gateway listener.
type DiscordConfig struct {
	// ApplicationID is the Discord application (client) id. Interactions carry it too; this one
	// is used when they do not.
	ApplicationID string
	// PublicKey verifies the signatures of HTTP interactions (the Developer Portal's "public key").
	PublicKey ed25519.PublicKey
	// Session is the bot's discordgo session for the gateway (see internal/discordsession). It may
	// be nil when ingress serves HTTP interactions only.
	Session *discordgo.Session
	// ShardID and ShardCount shard the gateway connection (DISCORD_SHARD_ID, DISCORD_SHARD_COUNT).
	// A ShardCount of 0 or 1 means no sharding.
	ShardID, ShardCount int
	// Now is the clock signature timestamps are checked against; nil means time.Now.
	Now func() time.Time
}

// Interaction handling limits.
const (
	// maxInteractionBody bounds an HTTP interaction request body.
	maxInteractionBody = 1 << 20
	// maxSignatureAge is how far an interaction's X-Signature-Timestamp may be from now.
	maxSignatureAge = 5 * time.Minute
	// interactionBudget bounds the work done for one interaction before it is answered, inside
	// Discord's 3-second acknowledgement window.
	interactionBudget = 2200 * time.Millisecond
)

// Modal custom ids, and the custom ids of their text inputs.
const (
	modalBug     = "flexcord:case:bug"
	modalFeature = "flexcord:case:feature"

	fieldTitle       = "title"
	fieldDescription = "description"
	fieldSteps       = "steps"
	fieldPlatform    = "platform"
)

// Memo key holding the id of the interaction that filed a case, to recognise a re-delivery.
const memoEventID = "discord_event_id"

// DiscordRoutes adds POST /discord/interactions, Discord's HTTP interactions endpoint, to the
// ingress router.
func DiscordRoutes(cfg DiscordConfig) func(*Server, *mux.Router) {
	return func(s *Server, r *mux.Router) {
		h := newDiscordHandler(s, cfg)
		if len(cfg.PublicKey) != ed25519.PublicKeySize {
			s.Log().Error("Discord public key is missing or malformed; every HTTP interaction will be refused")
		}
		r.HandleFunc("/discord/interactions", h.serveHTTP).Methods(http.MethodPost)
	}
}

// discordHandler turns Discord interactions and DMs into workflow signals.
type discordHandler struct {
	s   *Server
	cfg DiscordConfig
	log *slog.Logger
	now func() time.Time
}

func newDiscordHandler(s *Server, cfg DiscordConfig) *discordHandler {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &discordHandler{s: s, cfg: cfg, log: s.Log().With("provider", "discord"), now: now}
}

// serveHTTP is the interactions endpoint: it verifies the signature, answers PING, and maps every
// other interaction to its response.
func (h *discordHandler) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxInteractionBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "could not read the request body", http.StatusBadRequest)
		return
	}
	if !h.verify(r.Header, body) {
		http.Error(w, "invalid request signature", http.StatusUnauthorized)
		return
	}
	var i discordgo.Interaction
	if err := json.Unmarshal(body, &i); err != nil {
		http.Error(w, "malformed interaction", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), interactionBudget)
	defer cancel()
	resp, err := h.handleInteraction(ctx, &i)
	if err != nil {
		h.log.Warn("interaction not handled", "interaction_id", i.ID, "type", int(i.Type), "error", err)
		http.Error(w, "unsupported interaction", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// verify checks the Ed25519 signature of an HTTP interaction over timestamp + body, and that the
// timestamp is recent.
func (h *discordHandler) verify(header http.Header, body []byte) bool {
	if len(h.cfg.PublicKey) != ed25519.PublicKeySize {
		return false
	}
	sig, err := hex.DecodeString(header.Get("X-Signature-Ed25519"))
	if err != nil || len(sig) != ed25519.SignatureSize {
		return false
	}
	ts := header.Get("X-Signature-Timestamp")
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	if age := h.now().Sub(time.Unix(secs, 0)); age > maxSignatureAge || age < -maxSignatureAge {
		return false
	}
	msg := make([]byte, 0, len(ts)+len(body))
	msg = append(append(msg, ts...), body...)
	return ed25519.Verify(h.cfg.PublicKey, msg, sig)
}

// handleInteraction maps an interaction to a signal or a workflow start and returns the response
// to send Discord. It is shared by the HTTP endpoint and the gateway. Failures a member should
// hear about (busy, Temporal unreachable) become ephemeral messages; an error means the
// interaction cannot be handled at all.
func (h *discordHandler) handleInteraction(ctx context.Context, i *discordgo.Interaction) (*discordgo.InteractionResponse, error) {
	if i.Type == discordgo.InteractionPing {
		return &discordgo.InteractionResponse{Type: discordgo.InteractionResponsePong}, nil
	}
	if i.Data == nil {
		return nil, fmt.Errorf("interaction %s of type %d has no data", i.ID, i.Type)
	}
	locale := string(i.Locale)
	member, ok := memberOf(i)
	if !ok {
		return nil, fmt.Errorf("interaction %s has no user", i.ID)
	}
	switch i.Type {
	case discordgo.InteractionApplicationCommand:
		switch name := i.ApplicationCommandData().Name; name {
		case CommandHelpMe:
			return h.helpMe(ctx, i, member), nil
		case CommandBug:
			return caseModal(workflows.CaseBug, locale), nil
		case CommandNewFeature:
			return caseModal(workflows.CaseFeature, locale), nil
		default:
			h.log.Warn("unknown command", "command", name, "interaction_id", i.ID)
			return ephemeral(i18n.T(locale, "ingress.unknown_command")), nil
		}
	case discordgo.InteractionMessageComponent:
		return h.button(ctx, i, member), nil
	case discordgo.InteractionModalSubmit:
		return h.fileCase(ctx, i, member), nil
	default:
		return nil, fmt.Errorf("interaction %s: unsupported type %d", i.ID, i.Type)
	}
}

// helpMe answers /helpme with a deferred ephemeral reply and starts (or signals) the member's
// Conversation, which greets them by DM and then fills in the reply.
func (h *discordHandler) helpMe(ctx context.Context, i *discordgo.Interaction, m workflows.Member) *discordgo.InteractionResponse {
	locale := string(i.Locale)
	sig := workflows.HelpRequestedSignal{
		EventID: i.ID, Member: m, GuildID: i.GuildID, ChannelID: i.ChannelID, Locale: locale,
		Interaction: &workflows.Interaction{ApplicationID: h.applicationID(i), Token: i.Token},
	}
	if err := h.s.StartConversation(ctx, m, i.GuildID, "", locale, workflows.SignalHelpRequested, sig); err != nil {
		h.logSignalError("/helpme", i, err)
		return ephemeral(i18n.T(locale, "ingress.busy"))
	}
	return &discordgo.InteractionResponse{
		Type: discordgo.InteractionResponseDeferredChannelMessageWithSource,
		Data: &discordgo.InteractionResponseData{Flags: discordgo.MessageFlagsEphemeral},
	}
}

// button delivers a click on a flexcord button to the member's Conversation. Buttons that belong
// to a case (rating, keep waiting, leave a message) carry its id to the workflow.
func (h *discordHandler) button(ctx context.Context, i *discordgo.Interaction, m workflows.Member) *discordgo.InteractionResponse {
	locale := string(i.Locale)
	customID := i.MessageComponentData().CustomID
	press, err := workflows.ParseButton(customID)
	if err != nil {
		h.log.Warn("unknown button", "custom_id", customID, "interaction_id", i.ID)
		return ephemeral(i18n.T(locale, "ingress.unknown_button"))
	}
	if press.Action == workflows.ActionTranscript {
		return h.sendTranscript(ctx, i, m, locale, press.CaseID)
	}
	sig := workflows.UserActionSignal{EventID: i.ID, Member: m, Action: press.Action, Rating: press.Rating, Locale: locale, CaseID: press.CaseID}
	if press.Action == workflows.ActionTalkToHuman {
		// Asking for a person works even after the conversation ended: it starts a new one.
		err = h.s.StartConversation(ctx, m, i.GuildID, "", locale, workflows.SignalUserAction, sig)
	} else {
		// Solved, rating, keep waiting, leave a message: only a running conversation can act on
		// them.
		err = h.s.SignalConversation(ctx, m.UserID, workflows.SignalUserAction, sig)
	}
	if err != nil {
		// The buttons stay in place, so the member can click again.
		if _, gone := errors.AsType[*serviceerror.NotFound](err); gone {
			return ephemeral(i18n.T(locale, "ingress.conversation_ended"))
		}
		h.logSignalError("button "+customID, i, err)
		return ephemeral(i18n.T(locale, "ingress.busy"))
	}
	if press.Action == workflows.ActionRate && i.Message != nil {
		// The signal was accepted: show the chosen rating in place of the buttons, so the member
		// cannot rate twice.
		content := strings.TrimSpace(i.Message.Content + "\n\n" + i18n.T(locale, "rating.chosen", "rating", strconv.Itoa(press.Rating)))
		return &discordgo.InteractionResponse{
			Type: discordgo.InteractionResponseUpdateMessage,
			Data: &discordgo.InteractionResponseData{
				Content:         content,
				Components:      []discordgo.MessageComponent{},
				AllowedMentions: &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}},
			},
		}
	}
	// The conversation answers by DM (and replaces the buttons itself where it needs to).
	return &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredMessageUpdate}
}

// sendTranscript starts SendTranscript for the *Send me the transcript* button: the member gets
// the file by DM. A second click while one is sent joins it.
func (h *discordHandler) sendTranscript(ctx context.Context, i *discordgo.Interaction, m workflows.Member, locale, caseID string) *discordgo.InteractionResponse {
	if caseID == "" {
		return ephemeral(i18n.T(locale, "ingress.unknown_button"))
	}
	release, err := h.s.admit("")
	if err != nil {
		return ephemeral(i18n.T(locale, "ingress.busy"))
	}
	defer release()
	opts := client.StartWorkflowOptions{
		ID:                       workflows.TranscriptWorkflowID(m.UserID, caseID),
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            "Transcript of case " + caseID + " for " + m.Name(),
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SearchAttrDiscordUserID.ValueSet(m.UserID), workflows.SearchAttrCaseID.ValueSet(caseID),
		),
	}
	in := workflows.SendTranscriptInput{UserID: m.UserID, CaseID: caseID, Locale: locale, EventID: i.ID}
	if _, err := h.s.Temporal().ExecuteWorkflow(ctx, opts, workflows.SendTranscript, in); err != nil {
		h.logSignalError("transcript of case "+caseID, i, err)
		return ephemeral(i18n.T(locale, "ingress.busy"))
	}
	return ephemeral(i18n.T(locale, "transcript.sending"))
}

// fileCase starts a Case for a submitted /bug or /new_feature modal and tells the member its id.
func (h *discordHandler) fileCase(ctx context.Context, i *discordgo.Interaction, m workflows.Member) *discordgo.InteractionResponse {
	locale := string(i.Locale)
	data := i.ModalSubmitData()
	var typ workflows.CaseType
	switch data.CustomID {
	case modalBug:
		typ = workflows.CaseBug
	case modalFeature:
		typ = workflows.CaseFeature
	default:
		h.log.Warn("unknown modal", "custom_id", data.CustomID, "interaction_id", i.ID)
		return ephemeral(i18n.T(locale, "ingress.unknown_command"))
	}
	values := modalValues(data.Components)
	in := workflows.CaseInput{
		Type: typ, Reporter: m, GuildID: i.GuildID, ChannelID: i.ChannelID, Locale: locale,
		Title:       strings.TrimSpace(values[fieldTitle]),
		Description: strings.TrimSpace(values[fieldDescription]),
		EventID:     i.ID,
	}
	if typ == workflows.CaseBug {
		for _, f := range []struct{ name, key string }{{"Steps to reproduce", fieldSteps}, {"Platform", fieldPlatform}} {
			if v := strings.TrimSpace(values[f.key]); v != "" {
				in.Details = append(in.Details, workflows.Field{Name: f.name, Value: v})
			}
		}
	}
	if in.Title == "" {
		in.Title = truncateRunes(firstLine(in.Description), 100)
	}
	caseID, err := h.startCase(ctx, in)
	if err != nil {
		h.log.Error("could not file a case", "interaction_id", i.ID, "type", string(typ), "member", m.UserID, "error", err)
		return ephemeral(i18n.T(locale, "case.file_failed"))
	}
	h.log.Info("case filed", "case_id", caseID, "type", string(typ), "member", m.UserID, "interaction_id", i.ID)
	return ephemeral(i18n.T(locale, "case.filed.ephemeral", "type", i18n.T(locale, "case.type."+string(typ)), "case", caseID))
}

// startCase starts the Case workflow with a case id derived from the interaction id, so that a
// re-delivered interaction finds its case instead of filing a second one. If another case
// already has that id, the next candidate is tried. Only the in-flight bound applies: a refused
// modal would make the member type it again, and cases are few next to conversation signals.
func (h *discordHandler) startCase(ctx context.Context, in workflows.CaseInput) (string, error) {
	release, err := h.s.admit("")
	if err != nil {
		return "", err
	}
	defer release()
	for attempt := range 3 {
		in.CaseID = caseIDFor(in.EventID, attempt)
		opts := client.StartWorkflowOptions{
			ID:                                       workflows.CaseWorkflowID(in.CaseID),
			TaskQueue:                                workflows.TaskQueue,
			WorkflowIDReusePolicy:                    enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
			WorkflowIDConflictPolicy:                 enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
			WorkflowExecutionErrorWhenAlreadyStarted: true,
			StaticSummary:                            caseSummary(in),
			Memo:                                     map[string]any{memoEventID: in.EventID},
			TypedSearchAttributes: temporal.NewSearchAttributes(
				workflows.SearchAttrCaseID.ValueSet(in.CaseID),
				workflows.SearchAttrCaseType.ValueSet(string(in.Type)),
				workflows.SearchAttrCaseStatus.ValueSet(string(workflows.CaseOpen)),
				workflows.SearchAttrDiscordUserID.ValueSet(in.Reporter.UserID),
			),
		}
		_, err := h.s.Temporal().ExecuteWorkflow(ctx, opts, workflows.Case, in)
		if err == nil {
			return in.CaseID, nil
		}
		if _, dup := errors.AsType[*serviceerror.WorkflowExecutionAlreadyStarted](err); !dup {
			return "", fmt.Errorf("start case %s: %w", in.CaseID, err)
		}
		if h.filedBy(ctx, opts.ID, in.EventID) {
			return in.CaseID, nil
		}
	}
	return "", errors.New("no free case id after 3 attempts")
}

// filedBy reports whether the case workflow id was started for the interaction eventID.
func (h *discordHandler) filedBy(ctx context.Context, workflowID, eventID string) bool {
	desc, err := h.s.Temporal().DescribeWorkflowExecution(ctx, workflowID, "")
	if err != nil {
		return false
	}
	p := desc.GetWorkflowExecutionInfo().GetMemo().GetFields()[memoEventID]
	var got string
	if p == nil || h.s.DataConverter().FromPayload(p, &got) != nil {
		return false
	}
	return got == eventID
}

// caseIDFor derives a case id from an interaction id and an attempt number.
func caseIDFor(eventID string, attempt int) string {
	sum := sha256.Sum256([]byte(eventID + "/" + strconv.Itoa(attempt)))
	return workflows.FormatCaseID(binary.BigEndian.Uint64(sum[:8]))
}

func caseSummary(in workflows.CaseInput) string {
	kind := "Bug report"
	if in.Type == workflows.CaseFeature {
		kind = "Feature request"
	}
	return kind + " · " + in.Reporter.Name() + " · " + truncateRunes(in.Title, 80)
}

// modalValues returns the submitted text inputs by custom id.
func modalValues(components []discordgo.MessageComponent) map[string]string {
	out := map[string]string{}
	var walk func([]discordgo.MessageComponent)
	walk = func(cs []discordgo.MessageComponent) {
		for _, c := range cs {
			switch c := c.(type) {
			case *discordgo.ActionsRow:
				walk(c.Components)
			case *discordgo.TextInput:
				out[c.CustomID] = c.Value
			}
		}
	}
	walk(components)
	return out
}

// memberOf returns the member who used an interaction: the guild member's user in a guild, the
// user in a DM.
func memberOf(i *discordgo.Interaction) (workflows.Member, bool) {
	u := i.User
	if i.Member != nil && i.Member.User != nil {
		u = i.Member.User
	}
	if u == nil || u.ID == "" {
		return workflows.Member{}, false
	}
	return workflows.Member{UserID: u.ID, Username: u.Username, DisplayName: u.GlobalName}, true
}

func (h *discordHandler) applicationID(i *discordgo.Interaction) string {
	if i.AppID != "" {
		return i.AppID
	}
	return h.cfg.ApplicationID
}

func (h *discordHandler) logSignalError(what string, i *discordgo.Interaction, err error) {
	if errors.Is(err, ErrBusy) {
		h.log.Warn("ingress busy, interaction refused", "what", what, "interaction_id", i.ID, "reason", err)
		return
	}
	h.log.Error("could not signal Temporal", "what", what, "interaction_id", i.ID, "error", err)
}

// ephemeral is an immediate reply only the member sees, with mentions disabled.
func ephemeral(text string) *discordgo.InteractionResponse {
	return &discordgo.InteractionResponse{
		Type: discordgo.InteractionResponseChannelMessageWithSource,
		Data: &discordgo.InteractionResponseData{
			Content:         text,
			Flags:           discordgo.MessageFlagsEphemeral,
			AllowedMentions: &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}},
		},
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// truncateRunes shortens s to at most n runes, ending with an ellipsis when cut.
func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
