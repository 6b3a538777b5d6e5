package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/flexcord/flexcord/internal/blobstore"
	"github.com/flexcord/flexcord/internal/transcript"
	"github.com/flexcord/flexcord/workflows"
)

// jsonAnswer is a QueryWorkflow answer that goes through JSON, as a real one does.
type jsonAnswer struct{ v any }

func (a jsonAnswer) HasValue() bool { return true }

func (a jsonAnswer) Get(p any) error {
	b, err := json.Marshal(a.v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, p)
}

// noS3 keeps the environment's S3 settings, if any, out of a test.
func noS3(t *testing.T) {
	t.Helper()
	for _, v := range []string{"FLEXCORD_BLOB_DIR", "FLEXCORD_S3_BUCKET", "FLEXCORD_S3_ENDPOINT", "FLEXCORD_S3_ACCESS_KEY", "FLEXCORD_S3_SECRET_KEY", "FLEXCORD_S3_REGION", "FLEXCORD_S3_PREFIX", "FLEXCORD_S3_INSECURE"} {
		t.Setenv(v, "")
	}
}

// blobDir is an empty blob store directory for a test.
func blobDir(t *testing.T) (string, blobstore.Store) {
	t.Helper()
	noS3(t)
	dir := t.TempDir()
	s, err := blobstore.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, s
}

func seedTranscript(t *testing.T, s blobstore.Store, userID, transcriptID string, texts ...string) {
	t.Helper()
	at := time.Date(2026, 5, 1, 9, 30, 0, 0, time.UTC)
	var es []transcript.Entry
	for i, text := range texts {
		es = append(es, transcript.Entry{Seq: i + 1, At: at.Add(time.Duration(i) * time.Minute), Kind: transcript.KindMember, Name: "Mika", Text: text})
	}
	// Two chunks, the second written first.
	half := len(es) / 2
	for _, part := range [][]transcript.Entry{es[half:], es[:half]} {
		if err := transcript.Write(context.Background(), s, transcript.Chunk{DiscordUserID: userID, TranscriptID: transcriptID, Entries: part}); err != nil {
			t.Fatal(err)
		}
	}
}

func describeCase(tc interface {
	On(string, ...any) *mock.Call
}, caseID, userID string) {
	sa := temporal.NewSearchAttributes()
	if userID != "" {
		sa = temporal.NewSearchAttributes(workflows.SearchAttrDiscordUserID.ValueSet(userID))
	}
	tc.On("DescribeWorkflow", mock.Anything, workflows.CaseWorkflowID(caseID), "").Return(&client.WorkflowExecutionDescription{
		WorkflowExecutionMetadata: client.WorkflowExecutionMetadata{TypedSearchAttributes: sa},
	}, nil).Once()
}

func TestCasesTranscriptFromTheCaseStatus(t *testing.T) {
	dir, s := blobDir(t)
	seedTranscript(t, s, opsUserID, "T-1", "first", "second", "<b>third</b>")
	seedTranscript(t, s, opsUserID, "C-7K3QX2", "the case id's transcript, not this one")
	tc := mockTemporal(t)
	describeCase(tc, "C-7K3QX2", "2000000000000000999") // the status wins over the search attribute
	view := map[string]any{"case_id": "C-7K3QX2", "title": "Login loop", "reporter": map[string]any{"user_id": opsUserID},
		"transcript_id": "T-1", "discord_user_id": opsUserID}
	tc.On("QueryWorkflow", mock.Anything, "case:C-7K3QX2", "", workflows.QueryStatus).Return(jsonAnswer{view}, nil).Once()
	out, err := runOps("cases", "transcript", "C-7K3QX2", "--blob-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	want := "# Case C-7K3QX2 — Login loop\n\n**Mika** · 2026-05-01 09:30:00 UTC  \nfirst\n\n**Mika** · 2026-05-01 09:31:00 UTC  \nsecond\n\n**Mika** · 2026-05-01 09:32:00 UTC  \n\\<b>third\\</b>\n"
	if out != want {
		t.Errorf("transcript:\n%s\nwant:\n%s", out, want)
	}
}

func TestCasesTranscriptFallsBackWithoutAWorker(t *testing.T) {
	dir, s := blobDir(t)
	seedTranscript(t, s, opsUserID, "C-7K3QX2", `<script>alert("x")</script>`, "bye")
	tc := mockTemporal(t)
	describeCase(tc, "C-7K3QX2", opsUserID)
	tc.On("QueryWorkflow", mock.Anything, "case:C-7K3QX2", "", workflows.QueryStatus).Return(nil, context.DeadlineExceeded).Once()
	out, err := runOps("cases", "transcript", "case:C-7K3QX2", "--format", "html", "--blob-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "<title>Case C-7K3QX2</title>") || !strings.Contains(out, "&lt;script&gt;") || strings.Contains(out, "<script") || !strings.Contains(out, "bye") {
		t.Errorf("html:\n%s", out)
	}
}

func TestCasesTranscriptJSON(t *testing.T) {
	dir, s := blobDir(t)
	seedTranscript(t, s, opsUserID, "C-7K3QX2", "a", "b", "c", "d")
	tc := mockTemporal(t)
	describeCase(tc, "C-7K3QX2", opsUserID)
	tc.On("QueryWorkflow", mock.Anything, "case:C-7K3QX2", "", workflows.QueryStatus).Return(nil, serviceerror.NewNotFound("gone")).Once()
	out, err := runOps("cases", "transcript", "C-7K3QX2", "--format", "json", "--blob-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	var es []transcript.Entry
	if err := json.Unmarshal([]byte(out), &es); err != nil || len(es) != 4 || es[0].Seq != 1 || es[3].Text != "d" {
		t.Errorf("json %v:\n%s", err, out)
	}
}

func TestCasesTranscriptErrors(t *testing.T) {
	t.Run("no such case", func(t *testing.T) {
		dir, _ := blobDir(t)
		tc := mockTemporal(t)
		tc.On("DescribeWorkflow", mock.Anything, "case:C-7K3QX2", "").Return(nil, serviceerror.NewNotFound("workflow not found")).Once()
		if _, err := runOps("cases", "transcript", "C-7K3QX2", "--blob-dir", dir); err == nil || err.Error() != "no case C-7K3QX2" {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("no transcript", func(t *testing.T) {
		dir, s := blobDir(t)
		seedTranscript(t, s, "2000000000000000002", "C-7K3QX2", "another member's") // not this case's member
		tc := mockTemporal(t)
		describeCase(tc, "C-7K3QX2", opsUserID)
		tc.On("QueryWorkflow", mock.Anything, "case:C-7K3QX2", "", workflows.QueryStatus).Return(nil, context.DeadlineExceeded).Once()
		_, err := runOps("cases", "transcript", "C-7K3QX2", "--blob-dir", dir)
		if err == nil || !strings.Contains(err.Error(), "case C-7K3QX2 has no transcript in the blob store (directory "+dir) ||
			!strings.Contains(err.Error(), "members/"+opsUserID+"/transcripts/C-7K3QX2/") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("no member", func(t *testing.T) {
		dir, _ := blobDir(t)
		tc := mockTemporal(t)
		describeCase(tc, "C-7K3QX2", "")
		tc.On("QueryWorkflow", mock.Anything, "case:C-7K3QX2", "", workflows.QueryStatus).Return(nil, context.DeadlineExceeded).Once()
		if _, err := runOps("cases", "transcript", "C-7K3QX2", "--blob-dir", dir); err == nil || !strings.Contains(err.Error(), "no member is recorded") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("arguments", func(t *testing.T) {
		noS3(t)
		mockTemporal(t)
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"cases", "transcript"}, "takes one case id"},
			{[]string{"cases", "transcript", "C-7K3QX1"}, "is not a case id"},
			{[]string{"cases", "transcript", "C-7K3QX2", "--format", "pdf"}, `unknown format "pdf"`},
		} {
			if _, err := runOps(c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v: err = %v, want %q", c.args, err, c.want)
			}
		}
	})
	t.Run("half an S3 configuration", func(t *testing.T) {
		noS3(t)
		mockTemporal(t)
		t.Setenv("FLEXCORD_S3_ENDPOINT", "minio:9000")
		if _, err := runOps("cases", "transcript", "C-7K3QX2"); err == nil || !strings.Contains(err.Error(), "FLEXCORD_S3_ENDPOINT is set but FLEXCORD_S3_BUCKET is not") {
			t.Errorf("err = %v", err)
		}
	})
}

// TestTranscriptAndEraseHelp: the new commands document their flags and variables.
func TestTranscriptAndEraseHelp(t *testing.T) {
	blobVars := []string{"FLEXCORD_BLOB_DIR", "FLEXCORD_S3_BUCKET", "FLEXCORD_S3_ENDPOINT", "FLEXCORD_S3_ACCESS_KEY", "FLEXCORD_S3_SECRET_KEY", "FLEXCORD_S3_REGION", "FLEXCORD_S3_PREFIX", "FLEXCORD_S3_INSECURE"}
	checkHelp(t, []helpCase{
		{[]string{"cases", "transcript"}, concat(temporalVars, blobVars), map[string]string{"FLEXCORD_BLOB_DIR": "./data/blobs", "FLEXCORD_S3_INSECURE": "false"}},
		{[]string{"members", "erase"}, concat(temporalVars, blobVars), map[string]string{"FLEXCORD_BLOB_DIR": "./data/blobs"}},
		{[]string{"members"}, blobVars, nil},
	})
}
