package twilioclient

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	taskrouter "github.com/twilio/twilio-go/rest/taskrouter/v1"
)

// Events are the TaskRouter workspace events flexcord's ingress maps to signals.
var Events = []string{"reservation.accepted", "task.wrapup", "task.completed", "task.canceled", "workflow.timeout"}

// ErrCallbackInUse means the workspace already sends its events to another URL. A Flex
// workspace is shared with every other integration of the account, so it is not overwritten
// without being told to.
var ErrCallbackInUse = errors.New("the workspace already sends its events to another URL")

// SetupResult says what SetupEventCallback changed.
type SetupResult struct {
	WorkspaceSID string
	// Changes describe each setting that was changed, as "Name: old → new"; empty when the
	// workspace was already set up.
	Changes []string
}

// SetupEventCallback points the TaskRouter workspace's event callback at callbackURL with at
// least the Events flexcord needs. It is idempotent: it reads the workspace first and changes only
// what differs, keeping events other integrations asked for when the URL is already ours. A
// different existing callback URL is replaced only with force; otherwise the error wraps
// ErrCallbackInUse.
func SetupEventCallback(rc *RestClient, workspaceSID, callbackURL string, force bool) (SetupResult, error) {
	res := SetupResult{WorkspaceSID: workspaceSID}
	ws, err := rc.TaskrouterV1.FetchWorkspace(workspaceSID)
	if err != nil {
		return res, fmt.Errorf("fetch TaskRouter workspace %s: %w", workspaceSID, err)
	}
	curURL, curFilter := deref(ws.EventCallbackUrl), deref(ws.EventsFilter)
	if curURL != "" && curURL != callbackURL && !force {
		return res, fmt.Errorf("workspace %s sends its events to %s, not %s; flexcord would replace it, "+
			"and Flex workspaces are shared with other integrations (re-run with --force to overwrite): %w",
			workspaceSID, curURL, callbackURL, ErrCallbackInUse)
	}
	have := splitEvents(curFilter)
	params := &taskrouter.UpdateWorkspaceParams{}
	var want []string
	if curURL == callbackURL {
		// Our URL already: keep whatever else was asked for on it. An empty filter means every
		// event; flexcord asks for the few it uses instead.
		if len(have) == 0 || !containsAll(have, Events) {
			want = union(have, Events)
		}
	} else {
		params.SetEventCallbackUrl(callbackURL)
		res.Changes = append(res.Changes, fmt.Sprintf("EventCallbackUrl: %q → %q", curURL, callbackURL))
		if !slices.Equal(sorted(have), sorted(Events)) {
			want = slices.Clone(Events)
		}
	}
	if want != nil {
		filter := strings.Join(want, ",")
		params.SetEventsFilter(filter)
		res.Changes = append(res.Changes, fmt.Sprintf("EventsFilter: %q → %q", curFilter, filter))
	}
	if len(res.Changes) == 0 {
		return res, nil
	}
	if _, err := rc.TaskrouterV1.UpdateWorkspace(workspaceSID, params); err != nil {
		return SetupResult{WorkspaceSID: workspaceSID}, fmt.Errorf("update TaskRouter workspace %s: %w", workspaceSID, err)
	}
	return res, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func splitEvents(filter string) []string {
	var out []string
	for _, e := range strings.Split(filter, ",") {
		if e = strings.TrimSpace(e); e != "" && !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, e := range b {
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

func containsAll(have, want []string) bool {
	for _, e := range want {
		if !slices.Contains(have, e) {
			return false
		}
	}
	return true
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
