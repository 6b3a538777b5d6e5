package twilioemu

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/flexcord/flexcord/sandbox/oapi"
)

// Spec file names, looked up in Options.SpecDir or its spec/json/.
var specFiles = map[string]string{
	HostConversations: "twilio_conversations_v1.json",
	HostFlex:          "twilio_flex_v1.json",
	HostTaskRouter:    "twilio_taskrouter_v1.json",
}

// contract validates calls against the three Twilio specs.
type contract struct {
	specs map[string]*oapi.Spec // by product host
}

// contracts caches loaded contracts by directory: loading the three specs
// takes a noticeable fraction of a second, and a test suite starts many
// emulators. A loaded oapi.Spec is read-only and safe for concurrent use.
var contracts sync.Map // absolute dir → *cachedContract

type cachedContract struct {
	once sync.Once
	c    *contract
	err  error
}

func loadContract(dir string) (*contract, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("spec dir %s: %w", dir, err)
	}
	v, _ := contracts.LoadOrStore(abs, &cachedContract{})
	cc := v.(*cachedContract)
	cc.once.Do(func() { cc.c, cc.err = readContract(abs) })
	if cc.err != nil {
		contracts.CompareAndDelete(abs, cc) // let a later call try again
	}
	return cc.c, cc.err
}

func readContract(dir string) (*contract, error) {
	c := &contract{specs: make(map[string]*oapi.Spec)}
	for host, name := range specFiles {
		path := filepath.Join(dir, name)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			path = filepath.Join(dir, "spec", "json", name)
		}
		opts := oapi.Options{StrictResponseStatus: true}
		if host == HostFlex {
			opts.Patch = typeJSONFormFields
		}
		spec, err := oapi.Load(path, opts)
		if err != nil {
			return nil, fmt.Errorf("load %s spec: %w", host, err)
		}
		c.specs[host] = spec
	}
	return c, nil
}

// typeJSONFormFields gives the untyped form fields of the Interactions
// operations (Channel and Routing; MediaProperties and RoutingProperties of
// channel participants) the type string: they carry JSON objects, which the
// emulator decodes and checks itself. Without a type kin-openapi cannot
// decode them at all.
func typeJSONFormFields(doc *openapi3.T) error {
	for _, p := range []struct {
		path, method string
		fields       []string
	}{
		{"/v1/Interactions", http.MethodPost, []string{"Channel", "Routing"}},
		{"/v1/Interactions/{InteractionSid}/Channels/{Sid}", http.MethodPost, []string{"Routing"}},
		{"/v1/Interactions/{InteractionSid}/Channels/{ChannelSid}/Participants", http.MethodPost, []string{"MediaProperties", "RoutingProperties"}},
	} {
		item := doc.Paths.Value(p.path)
		if item == nil || item.GetOperation(p.method) == nil {
			return fmt.Errorf("spec has no %s %s", p.method, p.path)
		}
		op := item.GetOperation(p.method)
		if op.RequestBody == nil || op.RequestBody.Value == nil {
			return fmt.Errorf("spec has no request body for %s %s", p.method, p.path)
		}
		mt := op.RequestBody.Value.Content.Get("application/x-www-form-urlencoded")
		if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
			return fmt.Errorf("spec has no form schema for %s %s", p.method, p.path)
		}
		for _, field := range p.fields {
			prop := mt.Schema.Value.Properties[field]
			if prop == nil {
				return fmt.Errorf("spec has no form field %s for %s %s", field, p.method, p.path)
			}
			str := openapi3.NewStringSchema()
			if prop.Value != nil {
				str.Description = prop.Value.Description
			}
			mt.Schema.Value.Properties[field] = openapi3.NewSchemaRef("", str)
		}
	}
	return nil
}

// checkRequest validates a request. Hosts without an OpenAPI file (the
// Media Content Service) are not checked.
func (c *contract) checkRequest(host string, r *http.Request, body []byte) error {
	spec := c.specs[host]
	if spec == nil {
		return nil
	}
	return spec.ValidateRequest(r, body)
}

// checkResponse validates 2xx answers; the specs document no others.
func (c *contract) checkResponse(host string, r *http.Request, status int, h http.Header, body []byte) error {
	if status < 200 || status > 299 {
		return nil
	}
	spec := c.specs[host]
	if spec == nil {
		return nil
	}
	return spec.ValidateResponse(r, status, h, body)
}

// addViolation records a contract violation.
func (s *Server) addViolation(label string, err error) {
	v := label + ": " + err.Error()
	s.log.Warn("contract violation", "request", label, "err", err)
	s.mu.Lock()
	s.violations = append(s.violations, v)
	s.mu.Unlock()
	s.events.publish(Event{Type: EventViolation, Violation: v})
}

// Violations returns every contract violation recorded so far, each as
// "METHOD host/path: what is wrong".
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}
