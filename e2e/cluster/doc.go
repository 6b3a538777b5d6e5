// Package cluster holds the cluster test (`make test-cluster`): flexcord as operators run it, on
// a Temporal server built from the pinned go.temporal.io/server with PostgreSQL persistence and
// SQL visibility, every role a separate OS process (the sandbox, two workers, ingress and the
// gateway), conversations driven through the whole journey while one worker and the gateway are
// killed with SIGKILL. See cluster_test.go.
package cluster
