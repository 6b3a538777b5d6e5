package twilioemu

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestContractChecks(t *testing.T) {
	c, err := loadContract("testdata/twilio-oai")
	if err != nil {
		t.Fatalf("loadContract: %v", err)
	}
	form := func(v url.Values) string { return v.Encode() }
	channel := `{"type":"chat","initiated_by":"customer","properties":{"media_channel_sid":"CH0123456789abcdef0123456789abcdef"}}`
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	tests := []struct {
		name     string
		host     string
		method   string
		target   string
		body     string
		response bool // check a response with status and body instead of the request
		status   int
		wantErr  string // "" for valid
	}{
		{name: "interaction with JSON fields", host: HostFlex, method: "POST", target: "/v1/Interactions",
			body: form(url.Values{"Channel": {channel}, "Routing": {`{"properties":{}}`}})},
		{name: "interaction without Channel", host: HostFlex, method: "POST", target: "/v1/Interactions",
			body: form(url.Values{"Routing": {`{}`}}), wantErr: "Channel"},
		{name: "channel close", host: HostFlex, method: "POST",
			target: "/v1/Interactions/KD0123456789abcdef0123456789abcdef/Channels/UO0123456789abcdef0123456789abcdef",
			body:   form(url.Values{"Status": {"closed"}, "Routing": {`{"status":"closed"}`}})},
		{name: "bad order enum", host: HostConversations, method: "GET",
			target: "/v1/Conversations/CH0123456789abcdef0123456789abcdef/Messages?Order=newest", wantErr: "Order"},
		{name: "twilio-go default page size for webhooks", host: HostConversations, method: "GET",
			target: "/v1/Conversations/CH0123456789abcdef0123456789abcdef/Webhooks?PageSize=50", wantErr: "PageSize"},
		{name: "repeated filters", host: HostConversations, method: "POST",
			target: "/v1/Conversations/CH0123456789abcdef0123456789abcdef/Webhooks",
			body:   "Target=webhook&Configuration.Method=post&Configuration.Filters=onMessageAdded&Configuration.Filters=onParticipantAdded"},
		{name: "response with a bad SID", host: HostConversations, method: "GET",
			target: "/v1/Conversations/CH0123456789abcdef0123456789abcdef", response: true, status: 200,
			body: `{"sid":"XX1"}`, wantErr: "sid"},
		{name: "undocumented success status", host: HostFlex, method: "POST", target: "/v1/Interactions",
			response: true, status: 201, body: `{}`, wantErr: "201"},
		{name: "error answers are not checked", host: HostFlex, method: "POST", target: "/v1/Interactions",
			response: true, status: 400, body: `{"code":20001}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "https://"+tt.host+tt.target, strings.NewReader(tt.body))
			if tt.method == "POST" {
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			var err error
			if tt.response {
				err = c.checkResponse(tt.host, r, tt.status, jsonHeader, []byte(tt.body))
			} else {
				err = c.checkRequest(tt.host, r, []byte(tt.body))
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected violation: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseISODuration(t *testing.T) {
	for in, want := range map[string]string{"PT1M": "1m0s", "PT1H30M": "1h30m0s", "P1D": "24h0m0s", "P1W": "168h0m0s", "P1DT2S": "24h0m2s"} {
		d, err := parseISODuration(in)
		if err != nil || d.String() != want {
			t.Errorf("parseISODuration(%q) = %v, %v; want %s", in, d, err, want)
		}
	}
	for _, bad := range []string{"", "1H", "PT", "PTH", "P1H", "PT1Y"} {
		if _, err := parseISODuration(bad); err == nil {
			t.Errorf("parseISODuration(%q) succeeded", bad)
		}
	}
}
