package main

import (
	"context"
	"log/slog"
	"reflect"
	"slices"

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
	// missing names the variables to set for the provider's activities, for messages about a
	// worker that runs without them.
	missing() string
	// activityNames are the activities the provider's struct registers.
	activityNames() []string
	// addActivities sets the provider's activities on acts.
	addActivities(ctx context.Context, log *slog.Logger, acts *worker.Activities) error
	// addIngress adds the provider's routes to cfg and starts its background loops (such as the
	// Discord gateway, when ingress runs it) with env.goFn, which runs them until the command
	// stops; loops add what they bring up to env.ready.
	addIngress(ctx context.Context, log *slog.Logger, cfg *ingress.Config, env ingressEnv) error
}

// ingressEnv is what a provider's ingress part may use besides the ingress configuration.
type ingressEnv struct {
	// goFn runs a background loop until the command stops.
	goFn func(func(context.Context) error)
	// ready is ingress's /readyz.
	ready *readiness
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

var contextType = reflect.TypeFor[context.Context]()

// activityMethods lists the exported methods of an activity struct pointer that take a context
// first: the activities the SDK registers for it, by name.
func activityMethods(ptr any) []string {
	t := reflect.TypeOf(ptr)
	var names []string
	for i := range t.NumMethod() {
		m := t.Method(i)
		if m.Type.NumIn() >= 2 && m.Type.In(1) == contextType {
			names = append(names, m.Name)
		}
	}
	slices.Sort(names)
	return names
}

// discordOf returns the Discord provider of provs.
func discordOf(provs []provider) *discordProvider {
	for _, p := range provs {
		if d, ok := p.(*discordProvider); ok {
			return d
		}
	}
	panic("flexcord: no Discord provider registered")
}
