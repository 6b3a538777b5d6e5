package ingress

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"go.temporal.io/api/serviceerror"

	"github.com/flexcord/flexcord/internal/feed"
	"github.com/flexcord/flexcord/workflows"
)

// AnnouncementsPath is the route a brand's CMS or build pipeline pushes items to.
const AnnouncementsPath = "/announcements/{source}"

// AnnouncementsSignatureHeader carries the push's HMAC-SHA256 of the body, hex, with the source's
// secret as the key; "sha256=<hex>" is taken too.
const AnnouncementsSignatureHeader = "X-Flexcord-Signature"

// Push limits.
const (
	maxPushBytes = 1 << 20
	maxPushItems = 50
)

// AnnouncementsConfig configures the push route.
type AnnouncementsConfig struct {
	// Secret returns the push secret of a source, false when it has none (its pushes are
	// refused). Nil: SecretFromEnv.
	Secret func(source string) ([]byte, bool)
}

// SecretFromEnv reads a source's push secret from FLEXCORD_FEED_SECRET_<NAME>, NAME being the
// source's name in upper case with '-' written '_' (source "release-notes":
// FLEXCORD_FEED_SECRET_RELEASE_NOTES).
func SecretFromEnv(source string) ([]byte, bool) {
	v := os.Getenv(FeedSecretVariable(source))
	return []byte(v), v != ""
}

// FeedSecretVariable is the environment variable holding a source's push secret.
func FeedSecretVariable(source string) string {
	return "FLEXCORD_FEED_SECRET_" + strings.ToUpper(strings.ReplaceAll(source, "-", "_"))
}

// AnnouncementsRoutes adds POST /announcements/{source}: a signed push of one item (a JSON Feed
// item) or a whole feed document, handed to the source's Feed workflow, which posts what it has
// not posted before. Answers: 202 taken; 401 signature missing or wrong (or no secret set for
// the source); 400 not a feed item; 404 no such source running; 413 too large; 503 busy.
func AnnouncementsRoutes(cfg AnnouncementsConfig) func(*Server, *mux.Router) {
	if cfg.Secret == nil {
		cfg.Secret = SecretFromEnv
	}
	return func(s *Server, r *mux.Router) {
		r.HandleFunc(AnnouncementsPath, func(w http.ResponseWriter, req *http.Request) { push(s, cfg, w, req) }).Methods(http.MethodPost)
	}
}

func push(s *Server, cfg AnnouncementsConfig, w http.ResponseWriter, r *http.Request) {
	source := mux.Vars(r)["source"]
	log := s.log.With("route", "announcements", "source", source)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPushBytes))
	if err != nil {
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
			jsonError(w, http.StatusRequestEntityTooLarge, "the push is larger than 1 MiB")
			return
		}
		jsonError(w, http.StatusBadRequest, "could not read the body")
		return
	}
	secret, ok := []byte(nil), false
	if workflows.ValidFeedName(source) {
		secret, ok = cfg.Secret(source)
	}
	if !ok || !validPushSignature(secret, body, r.Header.Get(AnnouncementsSignatureHeader)) {
		// The same answer whether the source exists or not, so that sources cannot be guessed.
		log.Warn("push refused: bad or missing signature")
		jsonError(w, http.StatusUnauthorized, "missing or invalid "+AnnouncementsSignatureHeader+" (HMAC-SHA256 of the body with the source's secret, hex)")
		return
	}
	items, err := feed.ParsePush(body)
	if err != nil {
		jsonError(w, http.StatusBadRequest, err.Error())
		return
	}
	switch {
	case len(items) == 0:
		jsonError(w, http.StatusBadRequest, "the push holds no item")
		return
	case len(items) > maxPushItems:
		jsonError(w, http.StatusRequestEntityTooLarge, "at most 50 items per push")
		return
	}
	sum := sha256.Sum256(body)
	sig := workflows.FeedPushSignal{EventID: hex.EncodeToString(sum[:16]), Items: items}
	if err := s.SignalFeed(r.Context(), source, workflows.SignalFeedPush, sig); err != nil {
		if _, missing := errors.AsType[*serviceerror.NotFound](err); missing {
			jsonError(w, http.StatusNotFound, "no source named "+source+" is running (add it with flexcord feeds add)")
			return
		}
		if errors.Is(err, ErrBusy) {
			WriteBusyError(w, err)
			return
		}
		log.Error("push not handed to its feed", "error", err)
		setRetryAfter(w, 5*time.Second)
		jsonError(w, http.StatusServiceUnavailable, "Temporal did not take the push; send it again")
		return
	}
	log.Info("push taken", "items", len(items), "event_id", sig.EventID)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]any{"source": source, "items": len(items)})
}

// validPushSignature checks header against the HMAC-SHA256 of body with secret, in constant time.
func validPushSignature(secret, body []byte, header string) bool {
	header = strings.TrimSpace(header)
	header = strings.TrimPrefix(header, "sha256=")
	got, err := hex.DecodeString(header)
	if err != nil || len(got) != sha256.Size || len(secret) == 0 {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

func jsonError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
