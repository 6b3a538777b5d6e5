// Package discordemu is a local Discord for tests, benchmarks and the
// sandbox: it speaks enough of the real REST API (v9 as discordgo sends it,
// and v10), the gateway websocket and signed HTTP interactions that an
// unmodified discordgo session can run against it.
//
// Point discordgo at it through the HTTP client only:
//
//	emu := discordemu.NewTest(t, discordemu.Options{})   // or New + Start
//	dg, _ := discordgo.New("Bot " + emu.Token())
//	dg.Client = &http.Client{Transport: emu.Transport()}
//	dg.Identify.Intents = discordgo.IntentsGuilds | discordgo.IntentsDirectMessages
//	err := dg.Open() // GET /api/v9/gateway hands out the emulator's websocket URL
//
// The emulator enforces the Discord rules flexcord depends on (2,000
// character content, nonce length and enforce_nonce, edits by the author
// only (answered with MESSAGE_UPDATE), disabled buttons that cannot be
// clicked, history pages before, after and around a message, the 3 s
// acknowledgement deadline, 40060 on a second acknowledgement, 50007 for
// members who refuse DMs, embed limits, announcement channels whose messages
// the bot can crosspost once (GET /channels/{id} tells their type; see Guild
// and AnnouncementChannel), rate-limit headers and JSON 429s), validates every
// REST request and response against the official OpenAPI spec when one is
// configured (see LoadSpec, Violations, CheckContracts), injects faults
// (InjectFault, before or after the request is carried out, as error answers
// or dropped connections; DropGateway, ReconnectGateway, InvalidateSessions, and
// MissDispatches to lose gateway events the way an offline bot does), and acts
// as members (PutMember, SendDM, SendDMWithFiles, EditDM, DeleteDM,
// RunCommand, SubmitModal, ClickButton) while recording what the bot sent
// (Messages, UserMessages, BotMessages, WaitMessage, Subscribe). The same
// control API is served as JSON under /_emu/discord/ for the sandbox page,
// with live updates as Server-Sent Events at /_emu/discord/events.
//
// # Members' direct messages
//
// A member's DM reaches the bot as MESSAGE_CREATE (SendDM, SendDMWithFiles;
// POST /_emu/discord/members/{id}/dm, see Files). As in the Discord app, the
// member may then edit or delete their own messages in their DM channel
// with the bot, never the bot's, and not once deleted (ErrUnknownMessage,
// ErrNotAuthor, ErrMessageDeleted):
//
//   - EditDM, or PATCH /_emu/discord/members/{id}/dm/{message_id} with JSON
//     {"content": "..."} (answers the Record): the content changes,
//     attachments stay, edited_timestamp is set on the emulator's clock, and
//     the bot receives MESSAGE_UPDATE with the whole message as it now is.
//   - DeleteDM, or DELETE /_emu/discord/members/{id}/dm/{message_id}
//     (answers 204): the Record is marked Deleted and the bot receives
//     MESSAGE_DELETE with {"id", "channel_id"} only (guild messages would
//     add guild_id).
//
// Both events need the DIRECT_MESSAGES intent, like MESSAGE_CREATE in a DM.
// GET /channels/{id}/messages shows the edited content and
// edited_timestamp and leaves deleted messages out. The control API answers
// 404 for an unknown member or message, 403 for someone else's message and
// 410 for a deleted one.
//
// # Files
//
// Messages, follow-ups, edits, interaction callbacks and HTTP interaction
// answers may be multipart/form-data: a payload_json part (validated against
// the spec like a JSON body) and files[n] parts, which attachments entries
// in the payload refer to by id n. Limits: Options.MaxRequestSize per
// request (25 MiB), Options.MaxFileSize per file (10 MiB) and
// MaxFilesPerMessage files; above them Discord's 413 with code 40005. Stored
// messages carry attachment objects (id, filename, size, content_type,
// width and height of PNG, JPEG and GIF pictures, url, proxy_url) whose URLs
// point at https://cdn.discordapp.com and https://media.discordapp.net
// /attachments/{channel.id}/{attachment.id}/{filename}?ex=&is=&hm=: signed,
// valid for Options.AttachmentURLLifetime (24 hours) on the emulator's
// clock, served by the emulator through Transport, and answered 404 once
// expired or tampered with. Fetched messages carry freshly signed URLs.
// Members send files with SendDMWithFiles, or POST
// /_emu/discord/members/{id}/dm with JSON {"content", "files": [{"filename",
// "content_type", "description", "data" (base64)}]} or a multipart form
// (content and files[n]); the sandbox page loads attachments from
// /_emu/discord/attachments/{channel.id}/{attachment.id}/{filename}, which
// needs no signature (the page plays the Discord app, which refreshes its
// links).
package discordemu
