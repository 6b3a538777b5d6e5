// Package bench measures flexcord's relay end to end, side by side with a direct relay, in one
// process and one run: `make bench`.
//
// The flexcord path is the whole stack as `flexcord dev` runs it (internal/devstack): a member's
// DM goes from the Discord emulator's gateway to ingress, is signalled to the member's
// Conversation in the embedded Temporal server, and the worker's delivery posts it to the Twilio
// emulator's Flex conversation; an agent's message goes from the Twilio emulator as a signed
// webhook to ingress, through Temporal and the worker, to the member's DM in the Discord
// emulator. The direct relay does the same parsing and the same outbound calls with no Temporal
// in between, against an emulator pair of its own, so that the two do not interfere.
//
// The harness is in the package's tests:
//
//	make bench                                     (FLEXCORD_BENCH=1 go test -run '^TestRelayBench$' -v ./bench/)
//	FLEXCORD_BENCH=1 FLEXCORD_BENCH_QUICK=1 go test -run '^TestRelayBench$' -v ./bench/
//	go test ./bench/                               (TestHarness: a few conversations, the accounting checked)
//
// See relay_test.go for every setting.
package bench
