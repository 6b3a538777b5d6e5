package ingress

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"
	"go.temporal.io/sdk/converter"

	"github.com/flexcord/flexcord/internal/payloadcodec"
)

// CodecConfig serves Temporal's codec server protocol at POST /codec/encode and POST
// /codec/decode: the Temporal UI and the Temporal CLI (--codec-endpoint <ingress>/codec
// --codec-auth "Bearer <token>") send the payloads of a history there, as {"payloads": [...]}
// with an X-Namespace header, and show what comes back. Without Codec or Token the routes are not
// served (404).
type CodecConfig struct {
	// Codec is the payload codec of the workers (FLEXCORD_PAYLOAD_KEYS).
	Codec *payloadcodec.Codec
	// Token is the bearer token every request must carry (FLEXCORD_CODEC_TOKEN): whoever has it
	// can decrypt every history.
	Token string
	// AllowedOrigins are the origins of the Temporal UIs that call the endpoint from the browser
	// (FLEXCORD_CODEC_CORS_ORIGINS, e.g. https://temporal.example.com). Other origins get no CORS
	// headers, so browsers keep their pages from reading the answers.
	AllowedOrigins []string
}

func (c CodecConfig) enabled() bool { return c.Codec != nil && c.Token != "" }

// maxCodecBody bounds a request: the UI sends a history's payloads in batches, each payload at
// most Temporal's 2 MB blob limit.
const maxCodecBody = 16 << 20

// codecAllowHeaders are the request headers the Temporal UI sends (Content-Type: application/json
// and X-Namespace, with Authorization when it passes a token): a preflight must allow them all.
const codecAllowHeaders = "Content-Type, X-Namespace, Authorization"

// addCodecRoutes registers the codec routes on r when cfg is enabled.
func addCodecRoutes(r *mux.Router, cfg CodecConfig) {
	if !cfg.enabled() {
		return
	}
	h := &codecHandler{cfg: cfg, codec: converter.NewPayloadCodecHTTPHandler(cfg.Codec), token: sha256.Sum256([]byte(cfg.Token))}
	r.Handle("/codec/{op:encode|decode}", h).Methods(http.MethodPost, http.MethodOptions)
}

type codecHandler struct {
	cfg   CodecConfig
	codec http.Handler
	token [sha256.Size]byte
}

func (h *codecHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	allowed := origin != "" && slices.Contains(h.cfg.AllowedOrigins, origin)
	if allowed {
		hd.Set("Access-Control-Allow-Origin", origin)
		// The UI's "include cross-origin credentials" sends cookies (of a sign-in proxy in front
		// of ingress, say); the browser hands the answer over only with this header.
		hd.Set("Access-Control-Allow-Credentials", "true")
	}
	if r.Method == http.MethodOptions {
		// A preflight carries no credentials: it is answered for the allowed origins only.
		if !allowed {
			http.Error(w, "origin not allowed", http.StatusForbidden)
			return
		}
		hd.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		hd.Set("Access-Control-Allow-Headers", codecAllowHeaders)
		hd.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if !h.authorized(r) {
		hd.Set("WWW-Authenticate", `Bearer realm="flexcord codec"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxCodecBody)
	h.codec.ServeHTTP(w, r)
}

// authorized checks the bearer token in constant time (over digests, so that the token's length
// does not show either).
func (h *codecHandler) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], h.token[:]) == 1
}

// DataConverter is the data converter of the server's Temporal client: the default one, with
// the payload codec on top when one is configured. Payloads read outside the client (a memo in a
// DescribeWorkflowExecution answer) must be decoded with it.
func (s *Server) DataConverter() converter.DataConverter {
	return payloadcodec.DataConverter(s.cfg.Codec.Codec)
}
