package devstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/flexcord/flexcord/internal/payloadcodec"
	"github.com/flexcord/flexcord/sandbox/discordemu"
	"github.com/flexcord/flexcord/workflows"
)

// poll calls cond until it holds, failing the test after within.
func poll(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		<-tick.C
	}
}

// payloadsOf returns every temporal.api.common.v1.Payload in m, at any depth: inputs, results,
// signal and update arguments, marker details, memos, headers, search attributes, user metadata
// and the encoded attributes and details of failures alike.
func payloadsOf(m protoreflect.Message) []*commonpb.Payload {
	if p, ok := m.Interface().(*commonpb.Payload); ok {
		return []*commonpb.Payload{p}
	}
	var out []*commonpb.Payload
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len(); i++ {
				out = append(out, payloadsOf(v.List().Get(i).Message())...)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				out = append(out, payloadsOf(mv.Message())...)
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			out = append(out, payloadsOf(v.Message())...)
		}
		return true
	})
	return out
}

// readable is what a payload shows to whoever reads it without keys: its data as the default
// converter reads it (JSON text), else its bytes, and its metadata.
func readable(p *commonpb.Payload) string {
	var b strings.Builder
	var v any
	if err := converter.GetDefaultDataConverter().FromPayload(p, &v); err == nil {
		raw, _ := json.Marshal(v)
		b.Write(raw)
	}
	b.Write(p.GetData())
	for k, m := range p.GetMetadata() {
		b.WriteString(k + "=" + string(m))
	}
	return b.String()
}

// histories returns the events of every workflow execution in the namespace, read by c.
func histories(t *testing.T, c client.Client, ns string) map[string][]*historypb.HistoryEvent {
	t.Helper()
	ctx := context.Background()
	out := map[string][]*historypb.HistoryEvent{}
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: ns, NextPageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.GetExecutions() {
			id, run := e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()
			it := c.GetWorkflowHistory(ctx, id, run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				ev, err := it.Next()
				if err != nil {
					t.Fatal(err)
				}
				out[id+"/"+run] = append(out[id+"/"+run], ev)
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return out
		}
	}
}

// TestHistoriesAreEncrypted runs a conversation through the whole stack with payload keys: a
// member's /helpme (its interaction token travels in a signal and into the follow-up) and a DM
// through the gateway, then an operator's update, and a bug report (a Case with a memo). Read
// without keys, the histories hold neither the member's words, nor the token, nor the operator's
// argument, nor the report's description, in any payload or anywhere else in the events;
// decrypted with the keys, they hold them all. The codec endpoint on ingress and
// the Temporal UI's own address decode them too.
func TestHistoriesAreEncrypted(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole stack")
	}
	key, err := payloadcodec.GenerateKey("test")
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := payloadcodec.ParseKeys(key)
	codec, _ := payloadcodec.New(keys)
	const codecToken = "test-codec-token-0123456789"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, err := Start(ctx, Options{ServerLogLevel: "fatal", UI: true, PayloadCodec: codec, CodecToken: codecToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Stop() })
	dc := st.Discord
	member := SandboxMembers[0]
	nonce := make([]byte, 6)
	_, _ = rand.Read(nonce)
	words := "my recovery phrase is purple-otter-" + hex.EncodeToString(nonce)
	bugWords := "it shows my card number 4111-" + hex.EncodeToString(nonce)
	operator := "operator-" + hex.EncodeToString(nonce)

	// /helpme: the interaction token goes into the Conversation's signal, and into the
	// follow-up activity's input.
	info, err := dc.RunCommand(ctx, member.ID, discordemu.CommandInput{Name: "helpme", GuildID: SandboxGuildID, ChannelID: SandboxGeneralChannel, Locale: "en-US"})
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Token) < 20 {
		t.Fatalf("interaction token %q", info.Token)
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if _, err := dc.WaitMessage(wctx, func(r discordemu.Record) bool { return r.InteractionID == info.ID && r.FromBot }); err != nil {
		t.Fatalf("no follow-up to /helpme: %v", err)
	}

	// A DM through the gateway, answered from the knowledge base.
	before := len(dc.UserMessages(member.ID))
	dm, err := dc.SendDM(member.ID, words)
	if err != nil {
		t.Fatal(err)
	}
	status := func() workflows.ConversationStatus {
		var s workflows.ConversationStatus
		if v, err := st.Client.QueryWorkflow(ctx, workflows.ConversationWorkflowID(member.ID), "", workflows.QueryStatus); err == nil {
			_ = v.Get(&s)
		}
		return s
	}
	poll(t, 30*time.Second, "the DM in the conversation", func() bool { return status().LastMessageID == dm.Message.ID })
	poll(t, 30*time.Second, "the bot's answer to the DM", func() bool {
		msgs := dc.UserMessages(member.ID)
		for _, r := range msgs[min(before+1, len(msgs)):] {
			if r.FromBot {
				return true
			}
		}
		return false
	})
	// An update, whose argument is in the history.
	h, err := st.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflows.ConversationWorkflowID(member.ID), UpdateName: workflows.UpdateRetryDeliveries,
		Args: []any{workflows.RetryDeliveriesRequest{Operator: operator}}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.RetryDeliveriesResult
	if err := h.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}

	// A bug report: its description goes into the Case's input, the interaction id into its memo.
	if _, err := dc.RunCommand(ctx, member.ID, discordemu.CommandInput{Name: "bug", GuildID: SandboxGuildID, ChannelID: SandboxBugChannel, Locale: "en-US"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dc.SubmitModal(ctx, member.ID, discordemu.ModalInput{Values: map[string]string{
		"title": "Checkout page", "description": bugWords, "steps": "Open the app", "platform": "iOS 19"}}); err != nil {
		t.Fatal(err)
	}
	var caseWorkflow string
	poll(t, 30*time.Second, "the bug report's case", func() bool {
		resp, err := st.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: st.Namespace})
		if err != nil {
			return false
		}
		for _, e := range resp.GetExecutions() {
			if id := e.GetExecution().GetWorkflowId(); strings.HasPrefix(id, workflows.CaseWorkflowID("")) {
				caseWorkflow = id
				return true
			}
		}
		return false
	})

	// Read the histories as someone with access to the namespace but not the keys.
	plain, err := client.Dial(client.Options{HostPort: st.TemporalAddr, Namespace: st.Namespace, Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	secrets := map[string]string{"the member's words": words, "the interaction token": info.Token, "the operator's argument": operator,
		"the bug report's description": bugWords}
	found := map[string]bool{}
	var encrypted, total int
	var sample *commonpb.Payload
	var all map[string][]*historypb.HistoryEvent
	poll(t, 20*time.Second, "the conversation in the workflow list", func() bool {
		all = histories(t, plain, st.Namespace)
		for k := range all {
			if strings.HasPrefix(k, workflows.ConversationWorkflowID(member.ID)+"/") {
				return true
			}
		}
		return false
	})
	for run, events := range all {
		for _, ev := range events {
			raw, _ := proto.Marshal(ev)
			text, _ := protojson.Marshal(ev)
			for what, s := range secrets {
				if bytes.Contains(raw, []byte(s)) || bytes.Contains(text, []byte(s)) {
					t.Errorf("%s is readable in event %d (%s) of %s", what, ev.GetEventId(), ev.GetEventType(), run)
				}
			}
			for _, p := range payloadsOf(ev.ProtoReflect()) {
				total++
				shown := readable(p)
				for what, s := range secrets {
					if strings.Contains(shown, s) {
						t.Errorf("%s is readable in a payload of event %d (%s) of %s", what, ev.GetEventId(), ev.GetEventType(), run)
					}
				}
				if string(p.GetMetadata()[converter.MetadataEncoding]) != payloadcodec.Encoding {
					continue
				}
				encrypted++
				dec, err := codec.Decode([]*commonpb.Payload{p})
				if err != nil {
					t.Fatalf("decrypt a payload of event %d of %s: %v", ev.GetEventId(), run, err)
				}
				for what, s := range secrets {
					if strings.Contains(readable(dec[0]), s) {
						found[what] = true
						if what == "the member's words" {
							sample = p
						}
					}
				}
			}
		}
	}
	t.Logf("%d histories, %d payloads, %d encrypted", len(all), total, encrypted)
	for what := range secrets {
		if !found[what] {
			t.Errorf("%s is not in the decrypted histories either: the search is blind", what)
		}
	}
	if sample == nil {
		t.FailNow()
	}

	// Search attributes stay plain, for the index: the workflow list still filters by them.
	desc, err := plain.DescribeWorkflowExecution(ctx, workflows.ConversationWorkflowID(member.ID), "")
	if err != nil {
		t.Fatal(err)
	}
	var stage string
	if p := desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()[workflows.SearchAttrStage.GetName()]; p == nil ||
		converter.GetDefaultDataConverter().FromPayload(p, &stage) != nil || stage == "" {
		t.Errorf("the stage search attribute is not readable without keys: %v", p)
	}

	// The case's memo is encrypted too.
	cdesc, err := plain.DescribeWorkflowExecution(ctx, caseWorkflow, "")
	if err != nil {
		t.Fatal(err)
	}
	if memo := cdesc.GetWorkflowExecutionInfo().GetMemo().GetFields(); len(memo) == 0 {
		t.Errorf("the case %s has no memo", caseWorkflow)
	} else {
		for k, p := range memo {
			if string(p.GetMetadata()[converter.MetadataEncoding]) != payloadcodec.Encoding {
				t.Errorf("memo %s of %s is not encrypted: %v", k, caseWorkflow, p)
			}
		}
	}

	// The codec endpoint on ingress decodes it, with the token only; the Temporal UI is pointed at
	// its own address, which forwards there with the token.
	decode := func(url, auth string) (int, string) {
		body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{sample}})
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Namespace", st.Namespace)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		var ps commonpb.Payloads
		if resp.StatusCode == http.StatusOK && protojson.Unmarshal(out, &ps) == nil && len(ps.Payloads) == 1 {
			return resp.StatusCode, readable(ps.Payloads[0])
		}
		return resp.StatusCode, string(out)
	}
	if st.CodecURL != st.URL+"/codec" {
		t.Errorf("CodecURL = %q", st.CodecURL)
	}
	if code, _ := decode(st.CodecURL+"/decode", ""); code != http.StatusUnauthorized {
		t.Errorf("ingress /codec/decode without the token: %d, want 401", code)
	}
	if code, got := decode(st.CodecURL+"/decode", "Bearer "+codecToken); code != http.StatusOK || !strings.Contains(got, words) {
		t.Errorf("ingress /codec/decode: %d %.200s", code, got)
	}
	var settings struct{ Codec struct{ Endpoint string } }
	poll(t, 30*time.Second, "the Temporal UI's settings", func() bool {
		resp, err := http.Get(st.UIURL + "/api/v1/settings")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&settings) == nil
	})
	if settings.Codec.Endpoint == "" {
		t.Fatalf("the Temporal UI has no codec endpoint")
	}
	uiCodec := settings.Codec.Endpoint
	if strings.HasPrefix(uiCodec, "/") {
		uiCodec = st.UIURL + uiCodec // the browser resolves it against the UI's address
	}
	if code, got := decode(uiCodec+"/decode", ""); code != http.StatusOK || !strings.Contains(got, words) {
		t.Errorf("the UI's codec endpoint %s: %d %.200s", uiCodec, code, got)
	}
}

// TestDevSecretsStayAcrossRestarts: the payload key and codec token `flexcord dev` generates are
// written once, readable by their owner only, and read back the same the next time.
func TestDevSecretsStayAcrossRestarts(t *testing.T) {
	dir := t.TempDir() + "/data"
	c1, keyPath, created, err := LoadOrCreatePayloadKeys(dir)
	if err != nil || !created {
		t.Fatalf("first start: %v, created %v", err, created)
	}
	tok1, tokPath, created, err := LoadOrCreateCodecToken(dir)
	if err != nil || !created || len(tok1) < 32 {
		t.Fatalf("first token: %q, %v, created %v", tok1, err, created)
	}
	for _, p := range []string{keyPath, tokPath} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v, want 0600", p, err, fi.Mode().Perm())
		}
	}
	p, err := payloadcodec.DataConverter(c1).ToPayload("kept")
	if err != nil {
		t.Fatal(err)
	}
	c2, _, created, err := LoadOrCreatePayloadKeys(dir)
	if err != nil || created {
		t.Fatalf("second start: %v, created %v", err, created)
	}
	var got string
	if err := payloadcodec.DataConverter(c2).FromPayload(p, &got); err != nil || got != "kept" {
		t.Errorf("after a restart: %q, %v", got, err)
	}
	if tok2, _, created, err := LoadOrCreateCodecToken(dir); err != nil || created || tok2 != tok1 {
		t.Errorf("second token: %q (%v, created %v), want %q", tok2, err, created, tok1)
	}
}
