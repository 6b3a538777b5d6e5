// Package twilioemu is a local emulator of the parts of Twilio that flexcord
// uses: the Conversations API, the Flex Interactions API and a small
// TaskRouter with simulated agents. It speaks the real wire protocol, so
// github.com/twilio/twilio-go runs against it unmodified but for its HTTP
// transport, and it sends signed webhooks and TaskRouter event callbacks the
// way Twilio does.
//
// # Dispatch
//
// The emulator serves the Twilio products on one listener and tells them
// apart by the request's Host header: conversations.twilio.com,
// flex-api.twilio.com, taskrouter.twilio.com, the Media Content Service
// mcs.us1.twilio.com and its temporary media URLs on media.us1.twilio.com
// (any port, and any edge/region labels between the product and
// twilio.com). [Server.Transport]
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
//	rh := &client.RequestHandler{Client: c} // no Edge/Region: ignore TWILIO_EDGE / TWILIO_REGION
//	conv := conversationsv1.NewApiService(rh) // and flexv1, taskrouterv1 likewise
//
// Inside flexcord, twilioclient.New(creds, emu.Transport()) (or
// twilioclient.NewWithClient(c) for a client set up as above) does exactly this.
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
// State timers: Timers.Inactive (at least PT1M) and Timers.Closed (at least
// PT10M) are kept on create and update and shown as timers.date_inactive and
// timers.date_closed. Both count from the conversation's last activity (its
// creation, a message, setting a timer, reactivating it). When one comes due
// the conversation goes inactive or closed and onConversationStateUpdated is
// fired with Reason=TIMER; a closed conversation's interaction channel is
// closed and its task canceled (waiting) or wrapped up (assigned), as Flex
// does when it sees the conversation close. A message reactivates an
// inactive conversation (Reason=EVENT, fired when the message is). Timers
// read the emulator's clock: [Server.AdvanceClock] (or POST
// /_emu/twilio/clock/advance) moves it and applies the timers at once.
//
// Flex Interactions: CreateInteraction with a chat channel whose
// properties.media_channel_sid names a conversation creates the interaction
// (KD), its channel (UO, status active) and a pending TaskRouter task (WT)
// whose attributes are the routing attributes plus conversationSid,
// flexInteractionSid, flexInteractionChannelSid and flexChannelInviteSid.
// A [Fault] with ChannelStatus makes a new interaction's channel come out
// failed (error_code and error_message set, no task) or in setup for its
// first fetch. The channel's participants can be listed (the customer, then
// each agent that accepted its task, with routing_properties task_sid,
// worker_sid, reservation_sid), created (Type, MediaProperties) and, for
// agents, updated: Status=wrapup wraps the task up, Status=closed completes
// it; the agent leaves the conversation, which stays open (parked).
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
// cause; [Server.CancelTask] (task.canceled) and [Server.TimeoutTask]
// (workflow.timeout, then task.canceled with TaskCanceledReason "Workflow
// Timeout") end a waiting task without an agent and leave the conversation
// open, as Flex does. The workspace's EventsFilter is respected. A
// simulated agent is a worker whose friendly name is a login derived from
// the agent's name ("Alice Agent" → "alice.agent@flex.example"), sent as
// WorkerName, while WorkerAttributes carry the name itself as full_name.
//
// [Server.LoseConversation] makes Flex lose a conversation with its
// interaction and task, silently: no webhook, and 404/20404 for every later
// REST call on them.
//
// Media (not in the OpenAPI files; built from Twilio's Media resource
// docs): POST https://mcs.us1.twilio.com/v1/Services/{ChatServiceSid}/Media
// takes the raw file (Content-Type its type, an optional filename in
// Content-Disposition; a multipart/form-data body's file part works too)
// with Basic auth, and answers 201 with the Media resource (sid ME...,
// account_sid, service_sid, date_created, date_upload_updated,
// date_updated, channel_sid, message_sid, author "system", size,
// content_type, filename, category "media", url and links.content as paths
// on the mcs host, links.content_direct_temporary). GET .../Media/{Sid}
// returns it with a fresh links.content_direct_temporary, a signed URL on
// media.us1.twilio.com that needs no credentials and answers 403 once
// Options.MediaURLLifetime (5 minutes) has passed on the emulator's clock;
// GET .../Media/{Sid}/Content returns the file with Basic auth. Uploads
// over Options.MaxMediaSize (150 MB) answer 413 with code 50512; the
// ChatServiceSid is [Server.ChatServiceSID] (also every conversation's
// chat_service_sid). A message created with MediaSid carries the media
// (Body may then be empty): its media field lists {sid, content_type,
// filename, size, category}, and onMessageAdded gets Media, a JSON string
// of [{"Sid","ContentType","Filename","Size","Category"}]. A Media resource
// goes on one message; an unknown one, or one already on a message,
// answers 400 with code 50510.
//
// Every injected 429 carries Retry-After (Fault.RetryAfter, default 1 s).
//
// # Webhooks
//
// Conversation webhooks and TaskRouter event callbacks are form POSTs (or
// GETs for webhooks configured with method get) signed with
// X-Twilio-Signature over the exact configured URL, carrying
// I-Twilio-Idempotency-Token (the same on every attempt) and, for
// Conversations events, RetryCount. A delivery that gets a non-2xx answer,
// a transport error or no answer within the timeout is re-sent with
// exponential backoff up to [RetryPolicy].MaxAttempts. A configured URL may
// carry Twilio's connection overrides as a fragment
// ("#ct=1000&rt=4000&rc=5&rp=all"): the fragment is stripped before sending
// and signing, rc sets the number of retries and rp which failures (4xx,
// 5xx, ct, rt, all; default ct,rt) are retried; see the overrides.go
// comment for the details. Deliveries that belong to one conversation (its
// webhooks and its task's callbacks) are made one at a time in the order
// the events happened. [Server.Deliveries] reports them.
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
// [Server.SendAgentMessage], [Server.SendAgentMedia],
// [Server.SendAgentMessageWithMedia], [Server.UploadMedia], [Server.Media],
// [Server.WrapUpTask], [Server.CompleteTask],
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
//	POST   /_emu/twilio/tasks/{sid}/messages  {"body": "Hi", "media_sids": ["ME…"],
//	         "media": [{"filename", "content_type", "data" (base64)}]} → 201 MessageView
//	POST   /_emu/twilio/media[?filename=]     raw file (or a form) → 201 MediaView
//	GET    /_emu/twilio/media/{sid}                    → MediaView
//	GET    /_emu/twilio/media/{sid}/content            → the file (no credentials)
//	POST   /_emu/twilio/tasks/{sid}/wrapup             → TaskView
//	POST   /_emu/twilio/tasks/{sid}/complete           → TaskView
//	POST   /_emu/twilio/tasks/{sid}/cancel    {"reason": "..."}  → TaskView
//	POST   /_emu/twilio/tasks/{sid}/timeout            → TaskView
//	GET    /_emu/twilio/conversations/{sid or unique name}          → ConversationView
//	DELETE /_emu/twilio/conversations/{sid or unique name}          → 204 (lost, no webhook)
//	GET    /_emu/twilio/conversations/{sid or unique name}/messages → {"messages": [MessageView]}
//	GET    /_emu/twilio/clock                          → {"now": time}
//	POST   /_emu/twilio/clock/advance  {"seconds": 60} or {"duration": "PT1H"} → {"now": time}
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
