//go:build !dev

package main

import (
	"context"
	"fmt"
	"io"
)

// The production build leaves out the embedded Temporal server, its UI, the emulators and the
// sandbox page; the commands that run them say where to find them.
func init() {
	for _, name := range []string{"dev", "sandbox", "temporal"} {
		register(name, devOnly(name))
	}
}

func devOnly(name string) command {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		return fmt.Errorf("%q is part of the development build only; this is the production build (worker, ingress, gateway and the operator commands). Build the development one with `make build` or `go build -tags dev ./cmd/flexcord`", name)
	}
}

// devBuild tells whether this is the development build.
const devBuild = false
