// Package twilioemu is a local emulator of the parts of Twilio that flexcord
// uses: the Conversations API, the Flex Interactions API and a small
// TaskRouter with simulated agents. It speaks the real wire protocol, so
// github.com/twilio/twilio-go runs against it unmodified but for its HTTP
// transport, and it sends signed webhooks and TaskRouter event callbacks the
// way Twilio does.
//
// # Dispatch
//
// The emulator serves the three Twilio products on one listener and tells
// them apart by the request's Host header: conversations.twilio.com,
// flex-api.twilio.com and taskrouter.twilio.com (any port, and any
// edge/region labels between the product and twilio.com). [Server.Transport]
// (or [NewTransport]) rewrites the scheme and address of requests for those
// hosts to the emulator and keeps the Host header, so paths are exactly the
// ones twilio-go builds (/v1/Conversations/...). Requests for other hosts go
// to the base transport unchanged. Construct the client like this:
//
//	c := &client.Client{
//		Credentials: client.NewCredentials(accountSID, authToken),
//		HTTPClient:  &http.Client{Transport: emu.Transport(), Timeout: 10 * time.Second},
//	}
//	c.SetAccountSid(accountSID)
//	rc := twilio.NewRestClientWithParams(twilio.ClientParams{Client: c})
//	rc.SetEdge("")   // ignore TWILIO_EDGE / TWILIO_REGION from the environment
//	rc.SetRegion("")
//
// A Server is also an http.Handler: it can be wrapped in
// httptest.NewServer (then use [NewTransport] with the test server's URL) or
// mounted on another server for the three hosts and [ControlPrefix]. Call
// [Server.Close] in every case: it stops webhook deliveries.
//
// twilio-go quirk: ListConversationScopedWebhook without a page size sends
// PageSize=50, but the spec allows at most 5 there; pass SetPageSize(5) or
// the call is recorded as a contract violation.
//
// # Behaviour
//
// Conversations: create (a duplicate UniqueName gives 409/50353), fetch,
// update and delete by SID or UniqueName; participants (a duplicate identity
// gives 409/50433); conversation-scoped webhooks; messages (participant_sid
// is filled in when Author matches a participant's identity; list with
// Order and Page/PageSize paging and a proper meta block). Posting a message
// to, adding a participant to or updating a closed conversation gives HTTP
// 400 with code 50377 (the code Twilio documents for updates of a closed
// conversation; the exact code for messages is not documented). REST actions
// fire scoped webhooks only when the request carries
// X-Twilio-Webhook-Enabled: true, as on Twilio; actions of simulated agents
// always fire them (Source=SDK).
//
// Flex Interactions: CreateInteraction with a chat channel whose
// properties.media_channel_sid names a conversation creates the interaction
// (KD), its channel (UO, status active) and a pending TaskRouter task (WT)
// whose attributes are the routing attributes plus conversationSid,
// flexInteractionSid, flexInteractionChannelSid and flexChannelInviteSid.
// UpdateInteractionChannel with Status=closed closes the channel and the
// conversation (onConversationStateUpdated, Reason=API) and, as the spec
// says, moves an assigned task to wrapping (task.wrapup, reservation.wrapup);
// with Routing {"status":"closed"} the task is completed instead. A task that
// no agent has accepted yet is canceled. Closing a closed channel again is a
// no-op that answers 200.
//
// TaskRouter: the configured workspace can be fetched and updated
// (EventCallbackUrl, EventsFilter, ...) and tasks fetched and updated. The
// task engine is driven by the control API: [Server.AcceptTask],
// [Server.SendAgentMessage], [Server.WrapUpTask] and [Server.CompleteTask]
// emit the event callbacks and conversation webhooks a Flex agent would
// cause. The workspace's EventsFilter is respected.
//
// # Webhooks
//
// Conversation webhooks and TaskRouter event callbacks are form POSTs (or
// GETs for webhooks configured with method get) signed with
// X-Twilio-Signature over the exact configured URL, carrying
// I-Twilio-Idempotency-Token (the same on every attempt) and, for
// Conversations events, RetryCount. A delivery that gets a non-2xx answer,
// a transport error or no answer within the timeout is re-sent with
// exponential backoff up to [RetryPolicy].MaxAttempts. Deliveries that belong
// to one conversation (its webhooks and its task's callbacks) are made one at
// a time in the order the events happened. [Server.Deliveries] reports them.
//
// # Contract validation
//
// With Options.SpecDir set, every request and every 2xx response is
// validated against the official OpenAPI files (vendored in testdata/). The
// documented exceptions are:
//   - Channel and Routing (CreateInteraction, UpdateInteractionChannel) have
//     no type in the spec; they are validated as strings holding JSON
//     objects, and their content is checked by the emulator itself.
//   - Configuration.Method of a scoped webhook: the spec enum is lower case
//     (get, post). Twilio accepts upper case too, and so does the emulator,
//     but it records a violation so that flexcord keeps to the spec.
//   - Examples in the specs are not validated (some are invalid).
//   - Error bodies are not validated (the specs document only 2xx answers).
//
// Violations are recorded, not answered with errors; see
// [Server.Violations], [Server.CheckViolations] and [StartTest].
//
// # Control API
//
// Tests use the Go methods ([Server.Tasks], [Server.AcceptTask],
// [Server.SendAgentMessage], [Server.WrapUpTask], [Server.CompleteTask],
// [Server.ConversationMessages], [Server.InjectFault], [Server.Subscribe],
// ...). The sandbox page uses the same operations as JSON over HTTP under
// [ControlPrefix], on any host, without authentication, with CORS allowed
// from any origin; errors are {"error": "..."} with 404 for an unknown task
// or conversation, 409 for an action the task's state does not allow and 400
// for malformed input:
//
//	GET    /_emu/twilio/tasks[?status=waiting,assigned,wrapping,completed,canceled]
//	                                                   → {"tasks": [TaskView]}
//	GET    /_emu/twilio/tasks/{sid}                    → TaskView
//	POST   /_emu/twilio/tasks/{sid}/accept    {"agent": "Alice"} → TaskView
//	POST   /_emu/twilio/tasks/{sid}/messages  {"body": "Hi"}     → 201 MessageView
//	POST   /_emu/twilio/tasks/{sid}/wrapup             → TaskView
//	POST   /_emu/twilio/tasks/{sid}/complete           → TaskView
//	GET    /_emu/twilio/conversations/{sid or unique name}          → ConversationView
//	GET    /_emu/twilio/conversations/{sid or unique name}/messages → {"messages": [MessageView]}
//	GET    /_emu/twilio/workspace                      → WorkspaceView
//	GET    /_emu/twilio/faults                         → {"faults": [FaultStatus]}
//	POST   /_emu/twilio/faults                Fault    → 201 {"id": "F1"}
//	DELETE /_emu/twilio/faults                         → 204 (removes all)
//	DELETE /_emu/twilio/faults/{id}                    → 204
//	GET    /_emu/twilio/deliveries                     → {"deliveries": [Delivery]}
//	GET    /_emu/twilio/violations                     → {"violations": ["..."]}
//	GET    /_emu/twilio/events                         → text/event-stream
//
// The event stream sends one Server-Sent Event per [Event]: "id: <seq>",
// "event: <type>" and "data: <Event as JSON>".
package twilioemu
