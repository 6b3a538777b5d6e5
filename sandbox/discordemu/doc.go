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
// as members (PutMember, SendDM, RunCommand, SubmitModal, ClickButton) while
// recording what the bot sent (Messages, UserMessages, BotMessages,
// WaitMessage, Subscribe). The same control API is served as JSON under
// /_emu/discord/ for the sandbox page, with live updates as Server-Sent
// Events at /_emu/discord/events.
package discordemu
