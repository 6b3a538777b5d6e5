package main

import (
	"context"
	"log/slog"

	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/internal/config"
	"github.com/flexcord/flexcord/worker"
)

// provider is one external service flexcord talks to (Discord, Twilio): its settings, its
// activities and its ingress routes. Each provider's file registers a constructor in init.
type provider interface {
	// name is how messages refer to the provider ("Discord", "Twilio").
	name() string
	// bind registers the provider's settings (flags with environment twins).
	bind(b *config.Binder)
	// configured reports whether the provider's credentials were given.
	configured() bool
	// validate reports missing or malformed settings, naming the variable, when configured.
	validate() error
	// addActivities sets the provider's activities on acts.
	addActivities(ctx context.Context, log *slog.Logger, acts *worker.Activities) error
	// addIngress adds the provider's routes to cfg and starts its background loops (such as the
	// Discord gateway) with goFn, which runs them until the command stops.
	addIngress(ctx context.Context, log *slog.Logger, cfg *ingress.Config, goFn func(func(context.Context) error)) error
}

// providerConstructors are registered by each provider's file.
var providerConstructors []func() provider

func registerProvider(newP func() provider) {
	providerConstructors = append(providerConstructors, newP)
}

func newProviders() []provider {
	out := make([]provider, 0, len(providerConstructors))
	for _, newP := range providerConstructors {
		out = append(out, newP())
	}
	return out
}
