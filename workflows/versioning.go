package workflows

import "go.temporal.io/sdk/workflow"

// The versioning rule of this project: a change to what a running workflow does (the commands it
// issues, in order) goes behind workflow.GetVersion, and the histories recorded before it stay in
// testdata/ and are replayed by TestReplayRecordedHistories for as long as such workflows may run.
//
// Conversations and Cases read their behaviour version once, when a run starts without carried
// state, and carry it through continue-as-new in their state, so one conversation keeps one
// behaviour for its whole life.
const (
	// versionChangeID is the GetVersion change id of the behaviour versions below.
	versionChangeID = "every-path-ends"
	// behaviourLegacy is how workflows started before versioning behaved (no marker in history).
	behaviourLegacy = 0
	// behaviourEveryPathEnds: every stage has a deadline and a way out, every end reaches the
	// case, operator closes are final, the "wants a human" decision comes on the signal.
	behaviourEveryPathEnds = 1
	// behaviourFastRelay: the relay does less work per message. The inactivity timer is not
	// cancelled and started again for every message (lazy deadlineTimer).
	behaviourFastRelay = 2
	// behaviourLocalDelivery: a member DM or a Flex post is first tried as a local activity
	// (outbox.local, localTry), then as a regular activity; the DMs or posts queued for one
	// destination go out together in one activity (outbox.pump).
	behaviourLocalDelivery = 3
	// behaviourRecord: every transcript line also goes into the case's durable record in the
	// blob store (record.go); the agent gets the whole bot stage when the case is handed over.
	behaviourRecord = 4
	// behaviourLatest is what workflows that start now run.
	behaviourLatest = behaviourRecord
)

// behaviourOf reads the behaviour version of a workflow that starts fresh.
func behaviourOf(ctx workflow.Context) int {
	v := workflow.GetVersion(ctx, versionChangeID, workflow.DefaultVersion, behaviourLatest)
	if v == workflow.DefaultVersion {
		return behaviourLegacy
	}
	return int(v)
}

// v2 reports whether the conversation runs with the every-path-ends behaviour.
func (c *conversation) v2() bool { return c.s.Behaviour >= behaviourEveryPathEnds }

// fastRelay reports whether the conversation runs with the fast-relay behaviour.
func (c *conversation) fastRelay() bool { return c.s.Behaviour >= behaviourFastRelay }

// record reports whether the conversation keeps a durable record of its cases (record.go).
func (c *conversation) record() bool { return c.s.Behaviour >= behaviourRecord }

// localDelivery reports whether the conversation tries its relayed messages as local activities
// first.
func (c *conversation) localDelivery() bool { return c.s.Behaviour >= behaviourLocalDelivery }
