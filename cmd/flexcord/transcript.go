package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/flexcord/flexcord/internal/blobstore"
	"github.com/flexcord/flexcord/internal/config"
	"github.com/flexcord/flexcord/internal/transcript"
	"github.com/flexcord/flexcord/workflows"
)

const casesTranscriptUsage = `Usage: flexcord cases transcript C-XXXXXX [--format md|html|json]

Prints the transcript of a case (support case, bug report or feature request): every message,
edit, deletion, attachment and form answer, in order, times in UTC. md is plain Markdown to hand
to the member, html one self-contained page, json the entries. Transcripts are read from the
blob store: the directory FLEXCORD_BLOB_DIR, or the S3 bucket FLEXCORD_S3_BUCKET.
`

// blobStoreOpener opens the blob store that the flags and the environment name.
type blobStoreOpener func() (blobstore.Store, string, error)

// bindBlobStore binds where transcripts and attachments are kept: the directory --blob-dir
// (FLEXCORD_BLOB_DIR, default ./data/blobs) or an S3-compatible bucket (FLEXCORD_S3_*).
func bindBlobStore(b *config.Binder) blobStoreOpener {
	var dir string
	const dirUsage = "directory of transcripts and attachments, when no S3 bucket is set"
	b.FlagSet().StringVar(&dir, "blob-dir", "", dirUsage+" (env FLEXCORD_BLOB_DIR, default "+blobstore.DefaultDir+")")
	b.Vars = append(b.Vars, config.Var{Flag: "blob-dir", Env: "FLEXCORD_BLOB_DIR", Default: blobstore.DefaultDir, Usage: dirUsage})
	for _, v := range []struct {
		env, def, usage string
		secret          bool
	}{
		{"FLEXCORD_S3_BUCKET", "", "S3-compatible bucket of transcripts and attachments, instead of the directory", false},
		{"FLEXCORD_S3_ENDPOINT", blobstore.DefaultS3Endpoint, "S3 endpoint: host:port, or a URL (http:// for plain HTTP)", false},
		{"FLEXCORD_S3_ACCESS_KEY", "", "S3 access key (needed with a bucket)", false},
		{"FLEXCORD_S3_SECRET_KEY", "", "S3 secret key (needed with a bucket)", true},
		{"FLEXCORD_S3_REGION", "", "the bucket's region", false},
		{"FLEXCORD_S3_PREFIX", "", "prefix of flexcord's keys in the bucket, to share it", false},
		{"FLEXCORD_S3_INSECURE", "false", "true to reach the endpoint over plain HTTP", false},
	} {
		b.Describe(v.env, v.def, v.usage, v.secret)
	}
	return func() (blobstore.Store, string, error) {
		s, desc, err := blobstore.FromEnv(func(name string) string {
			if name == blobstore.EnvDir && dir != "" {
				return dir // the flag wins
			}
			return os.Getenv(name)
		})
		if err != nil {
			return nil, "", fmt.Errorf("blob store: %w", err)
		}
		return s, desc, nil
	}
}

func casesTranscriptCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("cases transcript", stderr)
	setIntro(fs, casesTranscriptUsage)
	b := config.NewBinder(fs)
	var address, namespace, format string
	bindTemporal(b, &address, &namespace)
	openStore := bindBlobStore(b)
	fs.StringVar(&format, "format", transcript.FormatMarkdown, "md, html or json")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := b.Err(); err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("cases transcript takes one case id")
	}
	caseID := strings.TrimPrefix(pos[0], "case:")
	if !workflows.ValidCaseID(caseID) {
		return fmt.Errorf("%q is not a case id (C- and six characters)", pos[0])
	}
	if !slices.Contains(transcript.Formats, format) {
		return fmt.Errorf("unknown format %q (want md, html or json)", format)
	}
	store, storeDesc, err := openStore()
	if err != nil {
		return err
	}
	tc, err := dialOps(address, namespace)
	if err != nil {
		return err
	}
	defer tc.Close()
	ref, err := resolveCaseTranscript(ctx, tc, caseID)
	if err != nil {
		return err
	}
	entries, err := transcript.Read(ctx, store, ref.userID, ref.transcriptID)
	if err != nil {
		return fmt.Errorf("case %s: %w", caseID, err)
	}
	if len(entries) == 0 {
		return fmt.Errorf("case %s has no transcript in the blob store (%s; looked under %s)",
			caseID, storeDesc, blobstore.TranscriptPrefix(ref.userID, ref.transcriptID))
	}
	title := "Case " + caseID
	if ref.title != "" {
		title += " — " + ref.title
	}
	return transcript.Render(stdout, title, entries, format)
}

// caseTranscriptRef is where a case's transcript is.
type caseTranscriptRef struct {
	userID, transcriptID, title string
}

// caseStatusView is a Case's status answer with the transcript fields newer Cases report.
type caseStatusView struct {
	workflows.CaseView
	TranscriptID  string `json:"transcript_id,omitempty"`
	DiscordUserID string `json:"discord_user_id,omitempty"`
}

// caseDescribeTimeout bounds the look-up of a case in Temporal.
const caseDescribeTimeout = 10 * time.Second

// resolveCaseTranscript finds a case's member and transcript: from the case's status when a
// worker answers (TranscriptID, DiscordUserID, the reporter), else the transcript named by the case
// id and the member named by the case's DiscordUserID search attribute.
func resolveCaseTranscript(ctx context.Context, tc client.Client, caseID string) (caseTranscriptRef, error) {
	id := workflows.CaseWorkflowID(caseID)
	dctx, cancel := context.WithTimeout(ctx, caseDescribeTimeout)
	desc, err := tc.DescribeWorkflow(dctx, id, "")
	cancel()
	if err != nil {
		if errors.As(err, new(*serviceerror.NotFound)) {
			return caseTranscriptRef{}, fmt.Errorf("no case %s", caseID)
		}
		return caseTranscriptRef{}, fmt.Errorf("case %s: %w", caseID, err)
	}
	ref := caseTranscriptRef{transcriptID: caseID}
	ref.userID, _ = desc.TypedSearchAttributes.GetKeyword(workflows.SearchAttrDiscordUserID)

	qctx, cancel := context.WithTimeout(ctx, conversationQueryTimeout)
	defer cancel()
	var v caseStatusView
	if val, err := tc.QueryWorkflow(qctx, id, "", workflows.QueryStatus); err == nil && val.Get(&v) == nil {
		ref.title = v.Title
		ref.userID = firstNonEmpty(v.DiscordUserID, v.Reporter.UserID, ref.userID)
		ref.transcriptID = firstNonEmpty(v.TranscriptID, ref.transcriptID)
	}
	if ref.userID == "" {
		return caseTranscriptRef{}, fmt.Errorf("case %s: no member is recorded for it (no DiscordUserID search attribute, and no worker answered its status query)", caseID)
	}
	return ref, nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
