package twilioemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// serveControl serves the JSON control API described in the package
// documentation.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "Content-Type, Content-Disposition")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.control.ServeHTTP(w, r)
}

func (s *Server) newControlMux() *http.ServeMux {
	p := strings.TrimSuffix(ControlPrefix, "/")
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+p+"/tasks", s.ctlTasks)
	mux.HandleFunc("GET "+p+"/tasks/{sid}", s.ctlTask)
	mux.HandleFunc("POST "+p+"/tasks/{sid}/accept", s.ctlAccept)
	mux.HandleFunc("POST "+p+"/tasks/{sid}/messages", s.ctlAgentMessage)
	mux.HandleFunc("POST "+p+"/tasks/{sid}/wrapup", s.ctlWrapUp)
	mux.HandleFunc("POST "+p+"/tasks/{sid}/complete", s.ctlComplete)
	mux.HandleFunc("POST "+p+"/tasks/{sid}/cancel", s.ctlCancel)
	mux.HandleFunc("POST "+p+"/tasks/{sid}/timeout", s.ctlTimeout)
	mux.HandleFunc("GET "+p+"/conversations/{ref}", s.ctlConversation)
	mux.HandleFunc("DELETE "+p+"/conversations/{ref}", s.ctlLoseConversation)
	mux.HandleFunc("GET "+p+"/clock", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"now": s.now()})
	})
	mux.HandleFunc("POST "+p+"/clock/advance", s.ctlAdvanceClock)
	mux.HandleFunc("GET "+p+"/conversations/{ref}/messages", s.ctlMessages)
	mux.HandleFunc("POST "+p+"/media", s.ctlUploadMedia)
	mux.HandleFunc("GET "+p+"/media/{sid}", s.ctlMedia)
	mux.HandleFunc("GET "+p+"/media/{sid}/content", s.ctlMediaContent)
	mux.HandleFunc("GET "+p+"/workspace", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Workspace())
	})
	mux.HandleFunc("GET "+p+"/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"faults": s.Faults()})
	})
	mux.HandleFunc("POST "+p+"/faults", s.ctlInjectFault)
	mux.HandleFunc("DELETE "+p+"/faults", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE "+p+"/faults/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !s.RemoveFault(r.PathValue("id")) {
			ctlError(w, http.StatusNotFound, fmt.Errorf("fault %s: %w", r.PathValue("id"), ErrNotFound))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET "+p+"/deliveries", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"deliveries": s.Deliveries()})
	})
	mux.HandleFunc("GET "+p+"/violations", func(w http.ResponseWriter, r *http.Request) {
		v := s.Violations()
		if v == nil {
			v = []string{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"violations": v})
	})
	mux.HandleFunc("GET "+p+"/events", s.ctlEvents)
	mux.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) {
		ctlError(w, http.StatusNotFound, fmt.Errorf("no control endpoint %s %s", r.Method, r.URL.Path))
	})
	return mux
}

func ctlError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// ctlFail writes err with the status its kind calls for.
func ctlFail(w http.ResponseWriter, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		ctlError(w, ae.Status, err)
	case errors.Is(err, ErrNotFound):
		ctlError(w, http.StatusNotFound, err)
	case errors.Is(err, ErrTaskState), errors.Is(err, ErrConversationClosed):
		ctlError(w, http.StatusConflict, err)
	default:
		ctlError(w, http.StatusBadRequest, err)
	}
}

// decodeBody decodes an optional JSON request body into v.
func decodeBody(r *http.Request, v any) error {
	return decodeBodyLimit(r, v, maxBody)
}

// decodeBodyLimit decodes an optional JSON request body of at most limit
// bytes into v.
func decodeBodyLimit(r *http.Request, v any, limit int64) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode body: %w", err)
	}
	return nil
}

func (s *Server) ctlTasks(w http.ResponseWriter, r *http.Request) {
	var statuses []TaskStatus
	for _, v := range r.URL.Query()["status"] {
		for _, st := range splitList(v) {
			statuses = append(statuses, TaskStatus(st))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tasks": s.Tasks(statuses...)})
}

func (s *Server) ctlTask(w http.ResponseWriter, r *http.Request) {
	t, err := s.Task(r.PathValue("sid"))
	if err != nil {
		ctlFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) ctlAccept(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Agent string `json:"agent"`
	}
	if err := decodeBody(r, &in); err != nil {
		ctlError(w, http.StatusBadRequest, err)
		return
	}
	t, err := s.AcceptTask(r.PathValue("sid"), in.Agent)
	if err != nil {
		ctlFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// ctlAgentMessage serves POST /_emu/twilio/tasks/{sid}/messages:
// {"body": "...", "media_sids": ["ME..."], "media": [{"filename",
// "content_type", "data" (base64)}]}, every field optional but one.
func (s *Server) ctlAgentMessage(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Body      string      `json:"body"`
		MediaSIDs []string    `json:"media_sids"`
		Media     []MediaFile `json:"media"`
	}
	if err := decodeBodyLimit(r, &in, s.opts.MaxMediaSize*4/3+maxBody); err != nil {
		ctlError(w, http.StatusBadRequest, err)
		return
	}
	var m MessageView
	var err error
	switch {
	case len(in.MediaSIDs) == 0 && len(in.Media) == 0:
		m, err = s.SendAgentMessage(r.PathValue("sid"), in.Body)
	default:
		m, err = s.agentMessage(r.PathValue("sid"), in.Body, in.MediaSIDs, in.Media)
	}
	if err != nil {
		ctlFail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, m)
}

func (s *Server) ctlWrapUp(w http.ResponseWriter, r *http.Request) {
	t, err := s.WrapUpTask(r.PathValue("sid"))
	if err != nil {
		ctlFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) ctlComplete(w http.ResponseWriter, r *http.Request) {
	t, err := s.CompleteTask(r.PathValue("sid"))
	if err != nil {
		ctlFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) ctlCancel(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Reason string `json:"reason"`
	}
	if err := decodeBody(r, &in); err != nil {
		ctlError(w, http.StatusBadRequest, err)
		return
	}
	t, err := s.CancelTask(r.PathValue("sid"), in.Reason)
	if err != nil {
		ctlFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) ctlTimeout(w http.ResponseWriter, r *http.Request) {
	t, err := s.TimeoutTask(r.PathValue("sid"))
	if err != nil {
		ctlFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) ctlLoseConversation(w http.ResponseWriter, r *http.Request) {
	if _, err := s.LoseConversation(r.PathValue("ref")); err != nil {
		ctlFail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) ctlAdvanceClock(w http.ResponseWriter, r *http.Request) {
	d, err := parseClockAdvance(r)
	if err != nil {
		ctlError(w, http.StatusBadRequest, err)
		return
	}
	now, err := s.AdvanceClock(d)
	if err != nil {
		ctlError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"now": now})
}

func (s *Server) ctlConversation(w http.ResponseWriter, r *http.Request) {
	c, err := s.Conversation(r.PathValue("ref"))
	if err != nil {
		ctlFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) ctlMessages(w http.ResponseWriter, r *http.Request) {
	msgs, err := s.ConversationMessages(r.PathValue("ref"))
	if err != nil {
		ctlFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": msgs})
}

func (s *Server) ctlInjectFault(w http.ResponseWriter, r *http.Request) {
	var f Fault
	if err := decodeBody(r, &f); err != nil {
		ctlError(w, http.StatusBadRequest, err)
		return
	}
	id, err := s.InjectFault(f)
	if err != nil {
		ctlError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": id})
}

// sseKeepAlive is how often an idle event stream gets a comment line.
const sseKeepAlive = 15 * time.Second

// ctlEvents streams events as Server-Sent Events: "id: <seq>", "event:
// <type>" and "data: <Event JSON>" per event.
func (s *Server) ctlEvents(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		ctlError(w, http.StatusInternalServerError, errors.New("streaming is not supported"))
		return
	}
	events, cancel := s.Subscribe()
	defer cancel()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, ": connected\n\n")
	flusher.Flush()
	tick := time.NewTicker(sseKeepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		case <-tick.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return
			}
			flusher.Flush()
		case e, ok := <-events:
			if !ok {
				return
			}
			b, err := json.Marshal(e)
			if err != nil {
				s.log.Error("encode event", "err", err)
				continue
			}
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, b); err != nil {
				return
			}
			flusher.Flush()
		}
	}
}
