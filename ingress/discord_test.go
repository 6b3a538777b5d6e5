package ingress_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/mux"
	"github.com/stretchr/testify/mock"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/mocks"

	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/internal/discordsession"
	"github.com/flexcord/flexcord/internal/i18n"
	"github.com/flexcord/flexcord/internal/payloadcodec"
	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/workflows"
)

// The key of RFC 8032's first Ed25519 test vector.
const (
	testSeed      = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
	testPublicKey = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
	appID         = "1100000000000000001"
	guildID       = "1100000000000000010"
	channelID     = "1100000000000000011"
	userID        = "2000000000000000001"
)

// A PING signed at katTimestamp with the test key; the signature was computed once and is
// checked here as a known answer.
const (
	katTimestamp = "1763726400"
	katBody      = `{"id":"1300000000000000001","application_id":"1100000000000000001","type":1,"token":"ping-token","version":1}`
	katSignature = "af0090c81bde3aa112814afff6960103568e857b4d2d5b4615f0761f71d6eb0eeb040af35be04b70412afda1a59d3fc96000e4c27fb3f7c22ed3d668eb573701"
)

var katTime = time.Unix(1763726400, 0)

func testKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	seed, _ := hex.DecodeString(testSeed)
	priv := ed25519.NewKeyFromSeed(seed)
	if got := hex.EncodeToString(priv.Public().(ed25519.PublicKey)); got != testPublicKey {
		t.Fatalf("public key %s, want the RFC 8032 vector %s", got, testPublicKey)
	}
	return priv
}

// newIngress returns an ingress server with the Discord routes on a mock Temporal client, with
// the clock at katTime.
func newIngress(t *testing.T, tc *mocks.Client, pub ed25519.PublicKey) *ingress.Server {
	t.Helper()
	return ingress.New(ingress.Config{
		Temporal: tc,
		Log:      slog.New(slog.DiscardHandler),
		Routes: []func(*ingress.Server, *mux.Router){ingress.DiscordRoutes(ingress.DiscordConfig{
			ApplicationID: appID, PublicKey: pub, Now: func() time.Time { return katTime },
		})},
	})
}

func post(s *ingress.Server, header http.Header, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/discord/interactions", strings.NewReader(body))
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	return w
}

func signed(priv ed25519.PrivateKey, ts, body string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-Signature-Timestamp", ts)
	h.Set("X-Signature-Ed25519", hex.EncodeToString(ed25519.Sign(priv, []byte(ts+body))))
	return h
}

func TestInteractionSignature(t *testing.T) {
	priv := testKey(t)
	if got := hex.EncodeToString(ed25519.Sign(priv, []byte(katTimestamp+katBody))); got != katSignature {
		t.Fatalf("signature %s, want the known answer %s", got, katSignature)
	}
	_, otherKey, _ := ed25519.GenerateKey(nil)
	valid := http.Header{}
	valid.Set("X-Signature-Timestamp", katTimestamp)
	valid.Set("X-Signature-Ed25519", katSignature)
	without := func(name string) http.Header {
		h := valid.Clone()
		h.Del(name)
		return h
	}
	with := func(name, value string) http.Header {
		h := valid.Clone()
		h.Set(name, value)
		return h
	}
	tests := []struct {
		name   string
		key    ed25519.PublicKey
		header http.Header
		body   string
		want   int
	}{
		{"valid PING", priv.Public().(ed25519.PublicKey), valid, katBody, http.StatusOK},
		{"wrong key", otherKey.Public().(ed25519.PublicKey), valid, katBody, http.StatusUnauthorized},
		{"tampered body", priv.Public().(ed25519.PublicKey), valid, strings.Replace(katBody, "ping-token", "pong-token", 1), http.StatusUnauthorized},
		{"stale timestamp", priv.Public().(ed25519.PublicKey), signed(priv, "1763726000", katBody), katBody, http.StatusUnauthorized},
		{"timestamp from the future", priv.Public().(ed25519.PublicKey), signed(priv, "1763726800", katBody), katBody, http.StatusUnauthorized},
		{"signed timestamp swapped", priv.Public().(ed25519.PublicKey), with("X-Signature-Timestamp", "1763726401"), katBody, http.StatusUnauthorized},
		{"missing signature", priv.Public().(ed25519.PublicKey), without("X-Signature-Ed25519"), katBody, http.StatusUnauthorized},
		{"missing timestamp", priv.Public().(ed25519.PublicKey), without("X-Signature-Timestamp"), katBody, http.StatusUnauthorized},
		{"signature not hex", priv.Public().(ed25519.PublicKey), with("X-Signature-Ed25519", "zz"+katSignature[2:]), katBody, http.StatusUnauthorized},
		{"no public key configured", nil, valid, katBody, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := &mocks.Client{}
			w := post(newIngress(t, tc, tt.key), tt.header, tt.body)
			if w.Code != tt.want {
				t.Fatalf("status %d (%s), want %d", w.Code, strings.TrimSpace(w.Body.String()), tt.want)
			}
			if tt.want == http.StatusOK && strings.TrimSpace(w.Body.String()) != `{"type":1}` {
				t.Fatalf("body %s, want PONG", w.Body)
			}
			tc.AssertExpectations(t)
		})
	}
}

// interaction builds an interaction payload as Discord sends it.
func interaction(id string, typ int, locale string, data map[string]any, extra map[string]any) string {
	p := map[string]any{
		"id": id, "application_id": appID, "type": typ, "token": "token-" + id, "version": 1,
		"locale": locale, "data": data, "channel_id": channelID, "guild_id": guildID,
		"member": map[string]any{
			"user":      map[string]any{"id": userID, "username": "alice", "global_name": "Alice"},
			"roles":     []any{},
			"joined_at": "2024-01-01T00:00:00.000000+00:00",
		},
	}
	for k, v := range extra {
		p[k] = v
	}
	b, _ := json.Marshal(p)
	return string(b)
}

func command(id, name, locale string) string {
	return interaction(id, 2, locale, map[string]any{"id": "1400000000000000001", "name": name, "type": 1}, nil)
}

// decodeResponse decodes an interaction response.
func decodeResponse(t *testing.T, w *httptest.ResponseRecorder) discordgo.InteractionResponse {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var resp struct {
		Type discordgo.InteractionResponseType `json:"type"`
		Data json.RawMessage                   `json:"data"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	out := discordgo.InteractionResponse{Type: resp.Type}
	if len(resp.Data) > 0 {
		out.Data = &discordgo.InteractionResponseData{}
		var raw struct {
			Content    string            `json:"content"`
			Flags      int               `json:"flags"`
			CustomID   string            `json:"custom_id"`
			Title      string            `json:"title"`
			Components []json.RawMessage `json:"components"`
		}
		if err := json.Unmarshal(resp.Data, &raw); err != nil {
			t.Fatal(err)
		}
		out.Data.Content, out.Data.Flags, out.Data.CustomID, out.Data.Title = raw.Content, discordgo.MessageFlags(raw.Flags), raw.CustomID, raw.Title
		for _, c := range raw.Components {
			var row discordgo.ActionsRow
			if err := json.Unmarshal(c, &row); err != nil {
				t.Fatal(err)
			}
			out.Data.Components = append(out.Data.Components, row)
		}
	}
	return out
}

var alice = workflows.Member{UserID: userID, Username: "alice", DisplayName: "Alice"}

func TestHelpMe(t *testing.T) {
	priv := testKey(t)
	const iid = "1300000000000000002"
	body := command(iid, "helpme", "ko")
	wantSignal := workflows.HelpRequestedSignal{
		EventID: iid, Member: alice, GuildID: guildID, ChannelID: channelID, Locale: "ko",
		Interaction: &workflows.Interaction{ApplicationID: appID, Token: "token-" + iid},
	}
	wantInput := workflows.ConversationInput{Member: alice, GuildID: guildID, Locale: "ko"}
	opts := mock.MatchedBy(func(o client.StartWorkflowOptions) bool {
		return o.ID == "conversation:"+userID && o.TaskQueue == workflows.TaskQueue
	})

	t.Run("signals the conversation and defers an ephemeral reply", func(t *testing.T) {
		tc := &mocks.Client{}
		tc.On("SignalWithStartWorkflow", mock.Anything, "conversation:"+userID, workflows.SignalHelpRequested, wantSignal, opts, mock.Anything, wantInput).
			Return(&mocks.WorkflowRun{}, nil).Once()
		resp := decodeResponse(t, post(newIngress(t, tc, priv.Public().(ed25519.PublicKey)), signed(priv, katTimestamp, body), body))
		if resp.Type != discordgo.InteractionResponseDeferredChannelMessageWithSource || resp.Data == nil || resp.Data.Flags != discordgo.MessageFlagsEphemeral {
			t.Fatalf("response %+v, want type 5 with flags 64", resp)
		}
		tc.AssertExpectations(t)
	})

	t.Run("a bad signature starts nothing", func(t *testing.T) {
		tc := &mocks.Client{}
		h := signed(priv, katTimestamp, body)
		w := post(newIngress(t, tc, priv.Public().(ed25519.PublicKey)), h, strings.Replace(body, "alice", "mallory", 1))
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", w.Code)
		}
		tc.AssertNotCalled(t, "SignalWithStartWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything)
	})

	t.Run("Temporal down gives a localized busy reply", func(t *testing.T) {
		tc := &mocks.Client{}
		tc.On("SignalWithStartWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything).
			Return(nil, serviceerror.NewUnavailable("connection refused")).Once()
		resp := decodeResponse(t, post(newIngress(t, tc, priv.Public().(ed25519.PublicKey)), signed(priv, katTimestamp, body), body))
		if resp.Type != discordgo.InteractionResponseChannelMessageWithSource || resp.Data.Flags != discordgo.MessageFlagsEphemeral ||
			resp.Data.Content != i18n.T("ko", "ingress.busy") {
			t.Fatalf("response %+v, want the Korean busy message, ephemeral", resp.Data)
		}
	})
}

func modalSubmit(id, customID, locale string, values map[string]string) string {
	var rows []any
	for _, k := range []string{"title", "description", "steps", "platform"} {
		if v, ok := values[k]; ok {
			rows = append(rows, map[string]any{"type": 1, "components": []any{map[string]any{"type": 4, "custom_id": k, "value": v}}})
		}
	}
	return interaction(id, 5, locale, map[string]any{"custom_id": customID, "components": rows}, nil)
}

var caseIDPattern = regexp.MustCompile(`C-[2-9A-HJKMNP-Z]{6}`)

func TestBugReport(t *testing.T) {
	priv := testKey(t)
	pub := priv.Public().(ed25519.PublicKey)

	t.Run("/bug opens a localized modal", func(t *testing.T) {
		body := command("1300000000000000003", "bug", "ja")
		resp := decodeResponse(t, post(newIngress(t, &mocks.Client{}, pub), signed(priv, katTimestamp, body), body))
		if resp.Type != discordgo.InteractionResponseModal || resp.Data.CustomID != "flexcord:case:bug" || resp.Data.Title != i18n.T("ja", "modal.bug.title") {
			t.Fatalf("response %+v, want the Japanese bug modal", resp.Data)
		}
		var ids []string
		for _, row := range resp.Data.Components {
			for _, c := range row.(discordgo.ActionsRow).Components {
				ids = append(ids, c.(*discordgo.TextInput).CustomID)
			}
		}
		if strings.Join(ids, ",") != "title,description,steps,platform" {
			t.Fatalf("modal inputs %v", ids)
		}
	})

	const iid = "1300000000000000004"
	body := modalSubmit(iid, "flexcord:case:bug", "ko", map[string]string{
		"title": " Crash on login ", "description": "The app closes.", "steps": "1. Open\n2. Log in", "platform": "",
	})
	var started workflows.CaseInput
	matchInput := mock.MatchedBy(func(in workflows.CaseInput) bool {
		started = in
		return true
	})
	checkInput := func(t *testing.T) {
		t.Helper()
		want := workflows.CaseInput{
			CaseID: started.CaseID, Type: workflows.CaseBug, Reporter: alice, GuildID: guildID, ChannelID: channelID, Locale: "ko",
			Title: "Crash on login", Description: "The app closes.",
			Details: []workflows.Field{{Name: "Steps to reproduce", Value: "1. Open\n2. Log in"}},
			EventID: iid,
		}
		a, _ := json.Marshal(started)
		b, _ := json.Marshal(want)
		if !bytes.Equal(a, b) || !workflows.ValidCaseID(started.CaseID) {
			t.Fatalf("CaseInput\n got %s\nwant %s", a, b)
		}
	}
	opts := mock.MatchedBy(func(o client.StartWorkflowOptions) bool {
		sa := o.TypedSearchAttributes
		caseID, _ := sa.GetKeyword(workflows.SearchAttrCaseID)
		typ, _ := sa.GetKeyword(workflows.SearchAttrCaseType)
		status, _ := sa.GetKeyword(workflows.SearchAttrCaseStatus)
		user, _ := sa.GetKeyword(workflows.SearchAttrDiscordUserID)
		return o.ID == workflows.CaseWorkflowID(caseID) && o.TaskQueue == workflows.TaskQueue &&
			o.WorkflowIDReusePolicy == enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE && o.WorkflowExecutionErrorWhenAlreadyStarted &&
			typ == "bug" && status == "open" && user == userID && o.StaticSummary != ""
	})

	var firstCase string
	t.Run("submitting the modal starts a Case", func(t *testing.T) {
		tc := &mocks.Client{}
		tc.On("ExecuteWorkflow", mock.Anything, opts, mock.Anything, matchInput).Return(&mocks.WorkflowRun{}, nil).Once()
		resp := decodeResponse(t, post(newIngress(t, tc, pub), signed(priv, katTimestamp, body), body))
		tc.AssertExpectations(t)
		checkInput(t)
		firstCase = started.CaseID
		if resp.Type != discordgo.InteractionResponseChannelMessageWithSource || resp.Data.Flags != discordgo.MessageFlagsEphemeral ||
			caseIDPattern.FindString(resp.Data.Content) != started.CaseID ||
			resp.Data.Content != i18n.T("ko", "case.filed.ephemeral", "type", i18n.T("ko", "case.type.bug"), "case", started.CaseID) {
			t.Fatalf("response %+v, want the Korean confirmation with case %s", resp.Data, started.CaseID)
		}
	})

	t.Run("a re-delivered submit finds the same case", func(t *testing.T) {
		tc := &mocks.Client{}
		tc.On("ExecuteWorkflow", mock.Anything, opts, mock.Anything, matchInput).
			Return(nil, serviceerror.NewWorkflowExecutionAlreadyStarted("already started", "", "")).Once()
		memo, _ := converter.GetDefaultDataConverter().ToPayload(iid)
		tc.On("DescribeWorkflowExecution", mock.Anything, workflows.CaseWorkflowID(firstCase), "").Return(&workflowservice.DescribeWorkflowExecutionResponse{
			WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{Memo: &commonpb.Memo{Fields: map[string]*commonpb.Payload{"discord_event_id": memo}}},
		}, nil).Once()
		resp := decodeResponse(t, post(newIngress(t, tc, pub), signed(priv, katTimestamp, body), body))
		tc.AssertExpectations(t)
		if started.CaseID != firstCase || !strings.Contains(resp.Data.Content, firstCase) {
			t.Fatalf("second delivery filed %s (%q); want the first case %s", started.CaseID, resp.Data.Content, firstCase)
		}
	})

	t.Run("a re-delivered submit finds the same case when memos are encrypted", func(t *testing.T) {
		key, err := payloadcodec.NewKey("k1", bytes.Repeat([]byte{9}, 32))
		if err != nil {
			t.Fatal(err)
		}
		codec, err := payloadcodec.New([]payloadcodec.Key{key})
		if err != nil {
			t.Fatal(err)
		}
		tc := &mocks.Client{}
		tc.On("ExecuteWorkflow", mock.Anything, opts, mock.Anything, matchInput).
			Return(nil, serviceerror.NewWorkflowExecutionAlreadyStarted("already started", "", "")).Once()
		memo, _ := payloadcodec.DataConverter(codec).ToPayload(iid)
		tc.On("DescribeWorkflowExecution", mock.Anything, workflows.CaseWorkflowID(firstCase), "").Return(&workflowservice.DescribeWorkflowExecutionResponse{
			WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{Memo: &commonpb.Memo{Fields: map[string]*commonpb.Payload{"discord_event_id": memo}}},
		}, nil).Once()
		in := ingress.New(ingress.Config{
			Temporal: tc, Log: slog.New(slog.DiscardHandler), Codec: ingress.CodecConfig{Codec: codec},
			Routes: []func(*ingress.Server, *mux.Router){ingress.DiscordRoutes(ingress.DiscordConfig{
				ApplicationID: appID, PublicKey: pub, Now: func() time.Time { return katTime },
			})},
		})
		resp := decodeResponse(t, post(in, signed(priv, katTimestamp, body), body))
		tc.AssertExpectations(t)
		if started.CaseID != firstCase || !strings.Contains(resp.Data.Content, firstCase) {
			t.Fatalf("second delivery filed %s (%q); want the first case %s", started.CaseID, resp.Data.Content, firstCase)
		}
	})

	t.Run("Temporal down gives a localized retry reply", func(t *testing.T) {
		tc := &mocks.Client{}
		tc.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).Return(nil, errors.New("unavailable")).Once()
		resp := decodeResponse(t, post(newIngress(t, tc, pub), signed(priv, katTimestamp, body), body))
		if resp.Data == nil || resp.Data.Content != i18n.T("ko", "case.file_failed") || resp.Data.Flags != discordgo.MessageFlagsEphemeral {
			t.Fatalf("response %+v, want the Korean failure message", resp.Data)
		}
	})
}

func TestButtons(t *testing.T) {
	priv := testKey(t)
	pub := priv.Public().(ed25519.PublicKey)
	click := func(id, customID string) string {
		return interaction(id, 3, "pt-BR", map[string]any{"custom_id": customID, "component_type": 2}, map[string]any{
			"message": map[string]any{"id": "1500000000000000001", "channel_id": channelID, "content": "Como foi?"},
		})
	}

	t.Run("rating signals and replaces the buttons", func(t *testing.T) {
		tc := &mocks.Client{}
		want := workflows.UserActionSignal{EventID: "1300000000000000005", Member: alice, Action: workflows.ActionRate, Rating: 4, Locale: "pt-BR"}
		tc.On("SignalWorkflow", mock.Anything, "conversation:"+userID, "", workflows.SignalUserAction, want).Return(nil).Once()
		body := click("1300000000000000005", workflows.ButtonCustomID(workflows.ActionRate, 4))
		resp := decodeResponse(t, post(newIngress(t, tc, pub), signed(priv, katTimestamp, body), body))
		tc.AssertExpectations(t)
		if resp.Type != discordgo.InteractionResponseUpdateMessage || len(resp.Data.Components) != 0 || !strings.Contains(resp.Data.Content, "4/5") {
			t.Fatalf("response %+v, want an update showing 4/5 without buttons", resp.Data)
		}
	})

	t.Run("a rating for a case carries the case id", func(t *testing.T) {
		tc := &mocks.Client{}
		want := workflows.UserActionSignal{
			EventID: "1300000000000000015", Member: alice, Action: workflows.ActionRate, Rating: 5, Locale: "pt-BR", CaseID: "C-7K3QX2",
		}
		tc.On("SignalWorkflow", mock.Anything, "conversation:"+userID, "", workflows.SignalUserAction, want).Return(nil).Once()
		body := click("1300000000000000015", "flexcord:rate:5:C-7K3QX2")
		resp := decodeResponse(t, post(newIngress(t, tc, pub), signed(priv, katTimestamp, body), body))
		tc.AssertExpectations(t)
		if resp.Type != discordgo.InteractionResponseUpdateMessage || len(resp.Data.Components) != 0 ||
			!strings.HasSuffix(resp.Data.Content, i18n.T("pt-BR", "rating.chosen", "rating", "5")) {
			t.Fatalf("response %+v, want an update showing the rating without buttons", resp.Data)
		}
	})

	// The rating is shown only once the conversation took it; otherwise the buttons stay for
	// another click.
	for _, tt := range []struct {
		name string
		err  error
		text string
	}{
		{"a rating Temporal did not take keeps the buttons", serviceerror.NewUnavailable("connection refused"), "ingress.busy"},
		{"a rating for an ended conversation keeps the buttons", serviceerror.NewNotFound("workflow not found"), "ingress.conversation_ended"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc := &mocks.Client{}
			tc.On("SignalWorkflow", mock.Anything, "conversation:"+userID, "", workflows.SignalUserAction, mock.Anything).Return(tt.err).Once()
			body := click("1300000000000000016", "flexcord:rate:3:C-7K3QX2")
			resp := decodeResponse(t, post(newIngress(t, tc, pub), signed(priv, katTimestamp, body), body))
			tc.AssertExpectations(t)
			if resp.Type != discordgo.InteractionResponseChannelMessageWithSource || resp.Data.Flags != discordgo.MessageFlagsEphemeral ||
				resp.Data.Content != i18n.T("pt-BR", tt.text) {
				t.Fatalf("response type %d %+v, want the ephemeral %s and no update", resp.Type, resp.Data, tt.text)
			}
		})
	}

	for _, tt := range []struct {
		customID string
		action   workflows.UserAction
	}{
		{"flexcord:wait:C-7K3QX2", workflows.ActionKeepWaiting},
		{"flexcord:leave:C-7K3QX2", workflows.ActionLeaveMessage},
	} {
		t.Run(string(tt.action)+" signals the conversation with the case", func(t *testing.T) {
			tc := &mocks.Client{}
			want := workflows.UserActionSignal{EventID: "1300000000000000017", Member: alice, Action: tt.action, Locale: "pt-BR", CaseID: "C-7K3QX2"}
			tc.On("SignalWorkflow", mock.Anything, "conversation:"+userID, "", workflows.SignalUserAction, want).Return(nil).Once()
			body := click("1300000000000000017", tt.customID)
			resp := decodeResponse(t, post(newIngress(t, tc, pub), signed(priv, katTimestamp, body), body))
			tc.AssertExpectations(t)
			if resp.Type != discordgo.InteractionResponseDeferredMessageUpdate {
				t.Fatalf("response type %d, want a deferred update (6)", resp.Type)
			}
		})
	}

	t.Run("talk to a human signals with start", func(t *testing.T) {
		tc := &mocks.Client{}
		want := workflows.UserActionSignal{EventID: "1300000000000000006", Member: alice, Action: workflows.ActionTalkToHuman, Locale: "pt-BR"}
		tc.On("SignalWithStartWorkflow", mock.Anything, "conversation:"+userID, workflows.SignalUserAction, want, mock.Anything, mock.Anything, mock.Anything).
			Return(&mocks.WorkflowRun{}, nil).Once()
		body := click("1300000000000000006", "flexcord:human")
		resp := decodeResponse(t, post(newIngress(t, tc, pub), signed(priv, katTimestamp, body), body))
		tc.AssertExpectations(t)
		if resp.Type != discordgo.InteractionResponseDeferredMessageUpdate {
			t.Fatalf("response type %d, want 6", resp.Type)
		}
	})

	t.Run("a finished conversation is explained", func(t *testing.T) {
		tc := &mocks.Client{}
		tc.On("SignalWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything).Return(serviceerror.NewNotFound("workflow not found")).Once()
		body := click("1300000000000000007", "flexcord:solved")
		resp := decodeResponse(t, post(newIngress(t, tc, pub), signed(priv, katTimestamp, body), body))
		if resp.Data == nil || resp.Data.Content != i18n.T("pt-BR", "ingress.conversation_ended") {
			t.Fatalf("response %+v", resp.Data)
		}
	})

	t.Run("a button with a malformed case id is refused", func(t *testing.T) {
		tc := &mocks.Client{}
		body := click("1300000000000000018", "flexcord:rate:4:case-7")
		resp := decodeResponse(t, post(newIngress(t, tc, pub), signed(priv, katTimestamp, body), body))
		if resp.Data == nil || resp.Data.Content != i18n.T("pt-BR", "ingress.unknown_button") {
			t.Fatalf("response %+v", resp.Data)
		}
		tc.AssertExpectations(t)
	})

	t.Run("an unknown button is refused", func(t *testing.T) {
		tc := &mocks.Client{}
		body := click("1300000000000000008", "someone-else:button")
		resp := decodeResponse(t, post(newIngress(t, tc, pub), signed(priv, katTimestamp, body), body))
		if resp.Data == nil || resp.Data.Content != i18n.T("pt-BR", "ingress.unknown_button") || resp.Data.Flags != discordgo.MessageFlagsEphemeral {
			t.Fatalf("response %+v", resp.Data)
		}
		tc.AssertExpectations(t)
	})
}

func TestCommandDefinitions(t *testing.T) {
	// Discord's rule for command names and their localizations.
	nameRE := regexp.MustCompile(`^[-_'\p{L}\p{N}\p{Devanagari}\p{Thai}]{1,32}$`)
	cmds := ingress.CommandDefinitions()
	var names []string
	for _, c := range cmds {
		names = append(names, c.Name)
		if c.Description == "" || len([]rune(c.Description)) > 100 {
			t.Errorf("%s: description %q", c.Name, c.Description)
		}
		for _, lang := range []discordgo.Locale{"ko", "ja", "ro", "id", "pt-BR"} {
			name, desc := (*c.NameLocalizations)[lang], (*c.DescriptionLocalizations)[lang]
			if !nameRE.MatchString(name) || strings.ToLower(name) != name {
				t.Errorf("%s: %s name %q is not a valid command name", c.Name, lang, name)
			}
			if desc == "" || len([]rune(desc)) > 100 || desc == c.Description {
				t.Errorf("%s: %s description %q", c.Name, lang, desc)
			}
		}
	}
	if strings.Join(names, ",") != "helpme,bug,new_feature" {
		t.Fatalf("commands %v", names)
	}
	if got := *cmds[0].Contexts; len(got) != 2 || got[1] != discordgo.InteractionContextBotDM {
		t.Errorf("/helpme contexts %v, want guild and bot DM", got)
	}
}

// startGateway runs the gateway listener on an emulator until the test ends.
func startGateway(t *testing.T, emu *discordemu.Server, tc *mocks.Client) *discordgo.Session {
	t.Helper()
	return startGatewayWith(t, emu, tc, nil)
}

// startGatewayWith is startGateway with the configuration changed by configure.
func startGatewayWith(t *testing.T, emu *discordemu.Server, tc *mocks.Client, configure func(*ingress.DiscordConfig)) *discordgo.Session {
	t.Helper()
	sess, err := discordsession.New(emu.Token(), emu.Transport())
	if err != nil {
		t.Fatal(err)
	}
	srv := ingress.New(ingress.Config{Temporal: tc, Log: slog.New(slog.DiscardHandler)})
	cfg := ingress.DiscordConfig{ApplicationID: emu.ApplicationID(), Session: sess}
	if configure != nil {
		configure(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ingress.RunDiscordGateway(ctx, srv, cfg)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunDiscordGateway: %v", err)
		}
	})
	waitFor(t, "the gateway session", func() bool {
		for _, s := range emu.GatewaySessions() {
			if s.Connected {
				return true
			}
		}
		return false
	})
	return sess
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

func TestGatewayDM(t *testing.T) {
	emu := discordemu.NewTest(t, discordemu.Options{Members: []discordemu.Member{{ID: userID, Username: "alice", GlobalName: "Alice", Locale: "ko"}}})
	tc := &mocks.Client{}
	noOpenConversations(tc)
	signals := make(chan workflows.UserMessageSignal, 10)
	// The first attempt fails (Temporal unreachable); the gateway does not re-send, so ingress retries.
	tc.On("SignalWithStartWorkflow", mock.Anything, "conversation:"+userID, workflows.SignalUserMessage, mock.Anything, mock.Anything, mock.Anything, mock.Anything).
		Return(nil, serviceerror.NewUnavailable("connection refused")).Once()
	tc.On("SignalWithStartWorkflow", mock.Anything, "conversation:"+userID, workflows.SignalUserMessage, mock.Anything, mock.Anything, mock.Anything, mock.Anything).
		Run(func(args mock.Arguments) { signals <- args.Get(3).(workflows.UserMessageSignal) }).
		Return(&mocks.WorkflowRun{}, nil)
	sess := startGateway(t, emu, tc)

	// The bot's own DM comes back as MESSAGE_CREATE and must be ignored.
	dm, err := sess.UserChannelCreate(userID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sess.ChannelMessageSend(dm.ID, "hello from the bot"); err != nil {
		t.Fatal(err)
	}
	var sent []discordemu.Record
	for _, text := range []string{"my order never arrived", "order 1234", "it was due Monday", "can I talk to a human?"} {
		rec, err := emu.SendDM(userID, text)
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, rec)
	}
	for n, rec := range sent {
		select {
		case got := <-signals:
			want := workflows.UserMessageSignal{
				EventID: rec.Message.ID, Member: alice, ChannelID: dm.ID, Text: rec.Message.Content, WantsHuman: n == 3,
			}
			a, _ := json.Marshal(got)
			b, _ := json.Marshal(want)
			if !bytes.Equal(a, b) {
				t.Fatalf("signal %d\n got %s\nwant %s", n, a, b)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no UserMessage signal for DM %d", n)
		}
	}
	select {
	case extra := <-signals:
		t.Fatalf("unexpected signal %+v (the bot's own message?)", extra)
	default:
	}
	tc.AssertNumberOfCalls(t, "SignalWithStartWorkflow", 5)
}

func TestGatewayBugModal(t *testing.T) {
	emu := discordemu.NewTest(t, discordemu.Options{Members: []discordemu.Member{{ID: userID, Username: "alice", GlobalName: "Alice", Locale: "ro"}}})
	tc := &mocks.Client{}
	noOpenConversations(tc)
	inputs := make(chan workflows.CaseInput, 1)
	tc.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).
		Run(func(args mock.Arguments) { inputs <- args.Get(3).(workflows.CaseInput) }).
		Return(&mocks.WorkflowRun{}, nil).Once()
	sess := startGateway(t, emu, tc)
	if _, err := sess.ApplicationCommandBulkOverwrite(emu.ApplicationID(), "", ingress.CommandDefinitions()); err != nil {
		t.Fatalf("register commands: %v", err)
	}
	ctx := context.Background()
	info, err := emu.RunCommand(ctx, userID, discordemu.CommandInput{Name: "new_feature", GuildID: discordemu.DefaultGuildID})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the modal", func() bool { return emu.Interaction(info.ID).ResponseType == 9 })
	sub, err := emu.SubmitModal(ctx, userID, discordemu.ModalInput{InteractionID: info.ID, Values: map[string]string{"title": "Dark mode", "description": "Please add a dark theme."}})
	if err != nil {
		t.Fatal(err)
	}
	var in workflows.CaseInput
	select {
	case in = <-inputs:
	case <-time.After(10 * time.Second):
		t.Fatal("no Case started")
	}
	if in.Type != workflows.CaseFeature || in.Title != "Dark mode" || in.Description != "Please add a dark theme." ||
		in.ChannelID != discordemu.DefaultChannelID || in.Locale != "ro" || in.EventID != sub.ID {
		t.Fatalf("CaseInput %+v", in)
	}
	var reply discordemu.Record
	waitFor(t, "the ephemeral confirmation", func() bool {
		for _, r := range emu.UserMessages(userID) {
			if r.InteractionID == sub.ID && r.Ephemeral {
				reply = r
				return true
			}
		}
		return false
	})
	if !strings.Contains(reply.Message.Content, in.CaseID) {
		t.Fatalf("confirmation %q does not name case %s", reply.Message.Content, in.CaseID)
	}
}

func TestGatewayRatingButton(t *testing.T) {
	emu := discordemu.NewTest(t, discordemu.Options{Members: []discordemu.Member{{ID: userID, Username: "alice", GlobalName: "Alice", Locale: "id"}}})
	tc := &mocks.Client{}
	noOpenConversations(tc)
	tc.On("SignalWorkflow", mock.Anything, "conversation:"+userID, "", workflows.SignalUserAction, mock.MatchedBy(func(s workflows.UserActionSignal) bool {
		return s.Action == workflows.ActionRate && s.Rating == 5 && s.Locale == "id" && s.Member == alice
	})).Return(nil).Once()
	sess := startGateway(t, emu, tc)

	// The rating request, as the Conversation sends it.
	dm, err := sess.UserChannelCreate(userID)
	if err != nil {
		t.Fatal(err)
	}
	var buttons []discordgo.MessageComponent
	for r := 1; r <= 5; r++ {
		buttons = append(buttons, discordgo.Button{Label: strconv.Itoa(r), Style: discordgo.SecondaryButton, CustomID: workflows.ButtonCustomID(workflows.ActionRate, r)})
	}
	msg, err := sess.ChannelMessageSendComplex(dm.ID, &discordgo.MessageSend{
		Content:    "Kasus C-7K3QX2 Anda telah diselesaikan.",
		Components: []discordgo.MessageComponent{discordgo.ActionsRow{Components: buttons}},
	})
	if err != nil {
		t.Fatal(err)
	}
	info, err := emu.ClickButton(context.Background(), userID, discordemu.ButtonInput{MessageID: msg.ID, CustomID: "flexcord:rate:5"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the answer to the click", func() bool { return emu.Interaction(info.ID).Acknowledged })
	if got := emu.Interaction(info.ID); got.ResponseType != 7 || got.Error != "" {
		t.Fatalf("interaction %+v, want an update (7)", got)
	}
	var updated discordemu.Record
	for _, r := range emu.Messages(dm.ID) {
		if r.Message.ID == msg.ID {
			updated = r
		}
	}
	if len(updated.Message.Components) != 0 || !strings.HasSuffix(updated.Message.Content, i18n.T("id", "rating.chosen", "rating", "5")) {
		t.Fatalf("rated message %q with %d component rows; want the buttons replaced by the rating", updated.Message.Content, len(updated.Message.Components))
	}
	tc.AssertExpectations(t)
}
