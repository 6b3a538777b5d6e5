package temporalclient

import (
	"testing"

	"go.temporal.io/sdk/client"
)

// TestNoCompression: the embedded server's clients send gRPC requests uncompressed; every other
// client keeps the SDK's default (gzip).
func TestNoCompression(t *testing.T) {
	co, err := ClientOptions(Options{HostPort: "127.0.0.1:7233", IgnoreEnv: true, NoCompression: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := co.ConnectionOptions.GrpcCompression.(*client.GrpcCompressionNone); !ok {
		t.Errorf("GrpcCompression = %T, want *client.GrpcCompressionNone", co.ConnectionOptions.GrpcCompression)
	}
	co, err = ClientOptions(Options{HostPort: "127.0.0.1:7233", IgnoreEnv: true})
	if err != nil {
		t.Fatal(err)
	}
	if co.ConnectionOptions.GrpcCompression != nil {
		t.Errorf("GrpcCompression = %T, want the SDK's default (nil: gzip)", co.ConnectionOptions.GrpcCompression)
	}
}
