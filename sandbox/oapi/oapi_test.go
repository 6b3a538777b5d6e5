package oapi_test

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/flexcord/flexcord/sandbox/oapi"
)

func loadPets(t *testing.T, opts oapi.Options) *oapi.Spec {
	t.Helper()
	spec, err := oapi.Load("testdata/pets.json", opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return spec
}

func request(method, url, body string) *http.Request {
	r, _ := http.NewRequest(method, url, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

func TestValidateRequest(t *testing.T) {
	v1to2 := func(p string) string { return strings.Replace(p, "/api/v1/", "/api/v2/", 1) }
	// Coerce "legs" given as a string of digits, as a provider quirk would.
	coerce := func(op oapi.Operation, mediaType string, body []byte) []byte {
		if op.ID != "put_pet" || mediaType != "application/json" {
			return body
		}
		return bytes.Replace(body, []byte(`"legs":"4"`), []byte(`"legs":4`), 1)
	}
	spec := loadPets(t, oapi.Options{RewritePath: v1to2, CoerceRequest: coerce})

	tests := []struct {
		name    string
		url     string
		body    string
		wantErr string
	}{
		{name: "valid, any host", url: "http://127.0.0.1:9999/api/v2/pets/12", body: `{"name":"rex","legs":4}`},
		{name: "rewritten path", url: "http://127.0.0.1:9999/api/v1/pets/12", body: `{"name":"rex","legs":null}`},
		{name: "coerced field", url: "http://127.0.0.1:9999/api/v2/pets/12", body: `{"name":"rex","legs":"4"}`},
		{name: "too long", url: "http://x/api/v2/pets/12", body: `{"name":"rexrexrexrex","legs":4}`, wantErr: "maxLength"},
		{name: "missing field", url: "http://x/api/v2/pets/12", body: `{"name":"rex"}`, wantErr: "legs"},
		{name: "bad path parameter", url: "http://x/api/v2/pets/abc", body: `{"name":"rex","legs":4}`, wantErr: "pet_id"},
		{name: "unknown path", url: "http://x/api/v2/cats/1", body: `{}`, wantErr: "no matching operation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := spec.ValidateRequest(request(http.MethodPut, tt.url, tt.body), []byte(tt.body))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("ValidateRequest: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("ValidateRequest error = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}

	_, _, err := spec.FindOperation(request(http.MethodGet, "http://x/api/v2/pets/1", ""))
	if !errors.Is(err, oapi.ErrNoOperation) {
		t.Fatalf("FindOperation(GET) error = %v, want ErrNoOperation", err)
	}
	op, params, err := spec.FindOperation(request(http.MethodPut, "http://x/api/v1/pets/7", ""))
	if err != nil || op.ID != "put_pet" || op.Path != "/pets/{pet_id}" || params["pet_id"] != "7" {
		t.Fatalf("FindOperation = %+v %v %v", op, params, err)
	}
}

func TestValidateResponse(t *testing.T) {
	spec := loadPets(t, oapi.Options{})
	r := request(http.MethodPut, "http://x/api/v2/pets/1", `{"name":"rex","legs":4}`)
	json := http.Header{"Content-Type": {"application/json"}}
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr bool
	}{
		{name: "valid", status: 200, body: `{"name":"rex","legs":4}`},
		{name: "wrong type", status: 200, body: `{"name":"rex","legs":"four"}`, wantErr: true},
		{name: "error body by range", status: 404, body: `{"code":10003}`},
		{name: "bad error body", status: 404, body: `{"message":"x"}`, wantErr: true},
		{name: "undocumented status passes by default", status: 503, body: `oops`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := spec.ValidateResponse(r, tt.status, json, []byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ValidateResponse error = %v, want error %v", err, tt.wantErr)
			}
		})
	}

	strict := loadPets(t, oapi.Options{StrictResponseStatus: true})
	if err := strict.ValidateResponse(r, 503, json, []byte(`{}`)); err == nil {
		t.Fatal("StrictResponseStatus accepted an undocumented status")
	}
}
