package workflows

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/flexcord/flexcord/internal/payloadcodec"
)

func replayCodec(t *testing.T) *payloadcodec.Codec {
	t.Helper()
	keys, err := payloadcodec.ParseKeys("replay:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{42}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := payloadcodec.New(keys)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// replayedTypes are the workflow types newReplayer registers (as TestReplayRecordedHistories
// does).
var replayedTypes = map[string]any{"Conversation": Conversation, "Case": Case, "Feed": Feed, "Announcements": Announcements}

func newReplayer(t *testing.T, codec *payloadcodec.Codec) worker.WorkflowReplayer {
	t.Helper()
	r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
		DataConverter: payloadcodec.DataConverter(codec), FailureConverter: payloadcodec.FailureConverter(codec),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range replayedTypes {
		r.RegisterWorkflow(w)
	}
	return r
}

func loadHistory(t *testing.T, file string) *historypb.History {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// encryptPayloads encrypts, in place, every payload of m that a worker with keys writes
// encrypted: all of them but search attributes and headers, which the data converter does not
// write. It returns how many it encrypted.
func encryptPayloads(t *testing.T, m protoreflect.Message, codec *payloadcodec.Codec) int {
	switch m.Descriptor().FullName() {
	case "temporal.api.common.v1.SearchAttributes", "temporal.api.common.v1.Header":
		return 0
	}
	if p, ok := m.Interface().(*commonpb.Payload); ok {
		enc, err := codec.Encode([]*commonpb.Payload{p})
		if err != nil {
			t.Fatal(err)
		}
		proto.Reset(p)
		proto.Merge(p, enc[0])
		return 1
	}
	n := 0
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len(); i++ {
				n += encryptPayloads(t, v.List().Get(i).Message(), codec)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				n += encryptPayloads(t, mv.Message(), codec)
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			n += encryptPayloads(t, v.Message(), codec)
		}
		return true
	})
	return n
}

// TestReplayWithPayloadKeys: turning encryption on breaks no running workflow. Workers with keys
// replay every recorded history, written plain before encryption; and the same histories with
// their payloads encrypted (as a worker with keys writes them) replay with the keys, and not
// without them.
func TestReplayWithPayloadKeys(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded histories in testdata/")
	}
	codec := replayCodec(t)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			typ := loadHistory(t, f).GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName()
			if replayedTypes[typ] == nil {
				t.Skipf("workflow type %s is not in replayedTypes: add it there", typ)
			}
			if err := newReplayer(t, codec).ReplayWorkflowHistory(quietLogger(), loadHistory(t, f)); err != nil {
				t.Fatalf("replay of the plain history with keys: %v", err)
			}
			h := loadHistory(t, f)
			if n := encryptPayloads(t, h.ProtoReflect(), codec); n == 0 {
				t.Fatal("no payload to encrypt")
			}
			if err := newReplayer(t, codec).ReplayWorkflowHistory(quietLogger(), h); err != nil {
				t.Fatalf("replay of the encrypted history with keys: %v", err)
			}
			if err := newReplayer(t, nil).ReplayWorkflowHistory(quietLogger(), h); err == nil {
				t.Error("the encrypted history replays without keys: its payloads were not encrypted")
			}
		})
	}
}
