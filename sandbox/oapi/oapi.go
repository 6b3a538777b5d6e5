// Package oapi validates HTTP requests and responses against an OpenAPI
// 3.0 or 3.1 document. The sandbox emulators use it to check every call they
// receive and every answer they send against the providers' official specs.
//
// A [Spec] is loaded once with [Load] and is then safe for concurrent use:
//
//	spec, err := oapi.Load("testdata/openapi.json", oapi.Options{
//		RewritePath: func(p string) string { return strings.Replace(p, "/api/v9/", "/api/v10/", 1) },
//	})
//	...
//	if err := spec.ValidateRequest(r, body); err != nil { ... }
//	if err := spec.ValidateResponse(r, status, header, respBody); err != nil { ... }
//
// Routing ignores the scheme and host of the spec's servers and keeps only
// their base path, so requests arriving at an emulator on 127.0.0.1 match the
// operations of https://discord.com/api/v10 or https://conversations.twilio.com.
package oapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// ErrNoOperation is returned (wrapped) when a request matches no operation
// of the spec: an unknown path, or a known path with an undocumented method.
var ErrNoOperation = errors.New("no matching operation in the OpenAPI spec")

// Operation identifies the spec operation a request was routed to.
type Operation struct {
	// Method is the HTTP method, upper case.
	Method string
	// Path is the path template as written in the spec, for example
	// "/channels/{channel_id}/messages" (without the server's base path).
	Path string
	// ID is the operationId, for example "create_message"; empty if the
	// spec gives none.
	ID string
}

// String returns "METHOD /path/template".
func (o Operation) String() string { return o.Method + " " + o.Path }

// BodyCoercion rewrites a request or response body before it is validated.
// It receives the matched operation, the body's media type (without
// parameters) and the raw body, and returns the body to validate. It is the
// place for documented differences between a spec and the real API (for
// example a field the spec types as integer but the API accepts as a string).
// It must not modify body in place.
type BodyCoercion func(op Operation, mediaType string, body []byte) []byte

// Options configure how a spec is loaded and how requests are validated.
// The zero value validates strictly against the document as written.
type Options struct {
	// RewritePath maps the path of an incoming request into the spec's path
	// space before routing, e.g. "/api/v9/users/@me" → "/api/v10/users/@me".
	// Nil leaves paths unchanged.
	RewritePath func(path string) string

	// Patch, if set, is called once after the document is loaded and before
	// it is validated and routed. Use it to correct schemas in memory (for
	// example to give an untyped form field a type).
	Patch func(doc *openapi3.T) error

	// CoerceRequest and CoerceResponse, if set, adjust bodies before
	// validation. See BodyCoercion.
	CoerceRequest  BodyCoercion
	CoerceResponse BodyCoercion

	// StrictResponseStatus makes ValidateResponse fail for a status code the
	// operation does not document (and that has no "default" response).
	StrictResponseStatus bool

	// SkipDocValidation skips validating the document itself at load time.
	// Examples are never validated (provider specs contain invalid ones).
	SkipDocValidation bool
}

// Spec is a loaded OpenAPI document with a router. It is safe for
// concurrent use.
type Spec struct {
	doc        *openapi3.T
	router     routers.Router
	opts       Options
	schemaOpts []openapi3.SchemaValidationOption
}

// Load reads the OpenAPI document (JSON or YAML) at path, applies
// opts.Patch, validates the document and builds a router for it.
// OpenAPI 3.1 documents are validated with JSON Schema 2020-12 semantics.
func Load(path string, opts Options) (*Spec, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("load OpenAPI spec %s: %w", path, err)
	}
	return New(doc, opts)
}

// New builds a Spec from an already loaded document. The document is
// modified in place (opts.Patch, servers reduced to their base paths) and
// must not be used elsewhere afterwards.
func New(doc *openapi3.T, opts Options) (*Spec, error) {
	ctx := context.Background()
	if opts.Patch != nil {
		if err := opts.Patch(doc); err != nil {
			return nil, fmt.Errorf("patch OpenAPI spec: %w", err)
		}
	}
	if !opts.SkipDocValidation {
		if err := doc.Validate(ctx, openapi3.DisableExamplesValidation()); err != nil {
			return nil, fmt.Errorf("validate OpenAPI spec: %w", err)
		}
	}
	hostless, err := basePathServers(doc.Servers)
	if err != nil {
		return nil, err
	}
	doc.Servers = hostless
	for _, item := range doc.Paths.Map() {
		if len(item.Servers) == 0 {
			continue
		}
		if item.Servers, err = basePathServers(item.Servers); err != nil {
			return nil, err
		}
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("build router for OpenAPI spec: %w", err)
	}
	s := &Spec{doc: doc, router: router, opts: opts}
	if doc.IsOpenAPI31OrLater() {
		s.schemaOpts = []openapi3.SchemaValidationOption{openapi3.EnableJSONSchema2020()}
	}
	return s, nil
}

// basePathServers reduces each server URL to its path, so that routing
// matches any scheme and host.
func basePathServers(in openapi3.Servers) (openapi3.Servers, error) {
	out := make(openapi3.Servers, 0, len(in))
	seen := make(map[string]bool)
	for _, srv := range in {
		raw := srv.URL
		for name, v := range srv.Variables {
			raw = strings.ReplaceAll(raw, "{"+name+"}", v.Default)
		}
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("parse server URL %q: %w", srv.URL, err)
		}
		p := strings.TrimSuffix(u.Path, "/")
		if seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, &openapi3.Server{URL: p})
	}
	return out, nil
}

// Doc returns the underlying document (read only).
func (s *Spec) Doc() *openapi3.T { return s.doc }

// FindOperation routes r (after Options.RewritePath) to a spec operation
// and returns it with the path parameters. The error wraps ErrNoOperation
// when nothing matches.
func (s *Spec) FindOperation(r *http.Request) (Operation, map[string]string, error) {
	route, params, err := s.route(r)
	if err != nil {
		return Operation{}, nil, err
	}
	return operationOf(route), params, nil
}

func operationOf(route *routers.Route) Operation {
	return Operation{Method: route.Method, Path: route.Path, ID: route.Operation.OperationID}
}

// route finds the route for a copy of r whose path has been rewritten.
func (s *Spec) route(r *http.Request) (*routers.Route, map[string]string, error) {
	rr := s.routingRequest(r, nil)
	route, params, err := s.router.FindRoute(rr)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s %s: %v", ErrNoOperation, r.Method, rr.URL.Path, err)
	}
	return route, params, nil
}

// routingRequest returns a shallow copy of r with a host-less URL, the
// rewritten path and (if body is not nil) a fresh body reader.
func (s *Spec) routingRequest(r *http.Request, body []byte) *http.Request {
	rr := r.Clone(r.Context())
	u := *r.URL
	u.Scheme, u.Host, u.User = "", "", nil
	if s.opts.RewritePath != nil {
		u.Path = s.opts.RewritePath(u.Path)
		u.RawPath = ""
	}
	rr.URL = &u
	rr.Host = ""
	rr.RequestURI = ""
	if body != nil {
		rr.Body = io.NopCloser(bytes.NewReader(body))
		rr.ContentLength = int64(len(body))
	} else {
		rr.Body = http.NoBody
		rr.ContentLength = 0
	}
	return rr
}

func (s *Spec) filterOptions() *openapi3filter.Options {
	return &openapi3filter.Options{
		AuthenticationFunc:      openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus:   s.opts.StrictResponseStatus,
		MultiError:              true,
		SchemaValidationOptions: s.schemaOpts,
	}
}

// ValidateRequest checks r, whose body has already been read into body,
// against the matching operation: path, query and header parameters and
// the request body. r.Body is not read. The error names the operation.
func (s *Spec) ValidateRequest(r *http.Request, body []byte) error {
	route, params, err := s.route(r)
	if err != nil {
		return err
	}
	op := operationOf(route)
	if s.opts.CoerceRequest != nil && len(body) > 0 {
		body = s.opts.CoerceRequest(op, mediaType(r.Header.Get("Content-Type")), body)
	}
	in := &openapi3filter.RequestValidationInput{
		Request:    s.routingRequest(r, body),
		PathParams: params,
		Route:      route,
		Options:    s.filterOptions(),
	}
	if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
		return fmt.Errorf("request %s: %w", op, err)
	}
	return nil
}

// ValidateResponse checks a response (status, headers and body) that is
// being sent for request r against the matching operation.
func (s *Spec) ValidateResponse(r *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := s.route(r)
	if err != nil {
		return err
	}
	op := operationOf(route)
	if s.opts.CoerceResponse != nil && len(body) > 0 {
		body = s.opts.CoerceResponse(op, mediaType(header.Get("Content-Type")), body)
	}
	opts := s.filterOptions()
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    s.routingRequest(r, nil),
			PathParams: params,
			Route:      route,
			Options:    opts,
		},
		Status:  status,
		Header:  header,
		Options: opts,
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(r.Context(), in); err != nil {
		return fmt.Errorf("response %d to %s: %w", status, op, err)
	}
	return nil
}

// mediaType returns the media type of a Content-Type header value, lower
// case and without parameters.
func mediaType(contentType string) string {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}
