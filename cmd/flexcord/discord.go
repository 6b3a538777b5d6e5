package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/mux"

	"github.com/flexcord/flexcord/activities"
	"github.com/flexcord/flexcord/ingress"
	"github.com/flexcord/flexcord/internal/config"
	"github.com/flexcord/flexcord/internal/discordsession"
	"github.com/flexcord/flexcord/worker"
)

func init() {
	register("discord", discordCommand)
	registerProvider(func() provider { return &discordProvider{} })
}

// snowflakeRE matches a Discord id.
var snowflakeRE = regexp.MustCompile(`^[0-9]{15,21}$`)

// discordProvider is Discord: the bot token for the REST activities and the gateway, the public
// key for HTTP interactions, and sharding.
type discordProvider struct {
	token        string // DISCORD_TOKEN; secret, never printed
	appID        string
	publicKeyHex string
	shardID      int
	shardCount   int

	// publicKey is set by validate (from publicKeyHex).
	publicKey ed25519.PublicKey
	// transport carries the REST calls; nil means the real Discord. FLEXCORD_SANDBOX_URL points
	// it at a sandbox's emulator.
	transport http.RoundTripper
	// gateway makes ingress open the gateway connection itself (FLEXCORD_INGRESS_GATEWAY);
	// otherwise `flexcord gateway` does.
	gateway bool

	once    sync.Once
	session *discordgo.Session
	err     error
}

func (p *discordProvider) name() string { return "Discord" }

func (p *discordProvider) bind(b *config.Binder) {
	b.Secret(&p.token, "", "DISCORD_TOKEN", "Discord bot token (environment only)")
	b.String(&p.appID, "discord-application-id", "DISCORD_APPLICATION_ID", "", "Discord application id")
	b.String(&p.publicKeyHex, "discord-public-key", "DISCORD_PUBLIC_KEY", "", "Discord application public key (hex), to serve HTTP interactions at /discord/interactions")
	b.Int(&p.shardID, "discord-shard-id", "DISCORD_SHARD_ID", 0, "gateway shard of this process")
	b.Int(&p.shardCount, "discord-shard-count", "DISCORD_SHARD_COUNT", 1, "number of gateway shards")
}

// useSandbox takes the sandbox's Discord emulator when no Discord credentials are set.
func (p *discordProvider) useSandbox(cfg *sandboxConfig, rt http.RoundTripper) bool {
	if p.configured() {
		return false
	}
	p.token, p.appID, p.publicKeyHex = cfg.Discord.Token, cfg.Discord.ApplicationID, cfg.Discord.PublicKey
	p.transport = rt
	return true
}

func (p *discordProvider) missing() string { return "DISCORD_TOKEN and DISCORD_APPLICATION_ID" }

func (p *discordProvider) activityNames() []string {
	return activityMethods((*activities.Discord)(nil))
}

// configured reports whether Discord is set up at all: a bot token (REST activities and the
// gateway) or a public key (HTTP interactions only, so that ingress can run without the token).
func (p *discordProvider) configured() bool { return p.token != "" || p.publicKeyHex != "" }

func (p *discordProvider) validate() error {
	if !p.configured() {
		return nil
	}
	if p.appID == "" {
		return errors.New("DISCORD_APPLICATION_ID is not set (the application id from the Discord Developer Portal)")
	}
	if !snowflakeRE.MatchString(p.appID) {
		return fmt.Errorf("DISCORD_APPLICATION_ID=%q is not a Discord id", p.appID)
	}
	if p.token != "" && strings.ContainsAny(strings.TrimPrefix(p.token, "Bot "), " \t\r\n") {
		return errors.New("DISCORD_TOKEN contains whitespace")
	}
	if p.publicKeyHex != "" {
		key, err := hex.DecodeString(p.publicKeyHex)
		if err != nil || len(key) != ed25519.PublicKeySize {
			return errors.New("DISCORD_PUBLIC_KEY is not a 64-digit hex Ed25519 public key")
		}
		p.publicKey = key
	}
	if p.shardCount < 1 {
		return fmt.Errorf("DISCORD_SHARD_COUNT=%d must be at least 1", p.shardCount)
	}
	if p.shardID < 0 || p.shardID >= p.shardCount {
		return fmt.Errorf("DISCORD_SHARD_ID=%d must be between 0 and DISCORD_SHARD_COUNT-1 (%d)", p.shardID, p.shardCount-1)
	}
	return nil
}

// discordSession returns the provider's one session, shared by the activities and the gateway.
func (p *discordProvider) discordSession() (*discordgo.Session, error) {
	p.once.Do(func() {
		p.session, p.err = discordsession.New(p.token, p.transport)
	})
	return p.session, p.err
}

func (p *discordProvider) addActivities(ctx context.Context, log *slog.Logger, acts *worker.Activities) error {
	if p.token == "" {
		return nil // HTTP interactions only; another worker sends the messages.
	}
	s, err := p.discordSession()
	if err != nil {
		return err
	}
	acts.Discord = activities.NewDiscord(s, log.With("provider", "discord"))
	if acts.Files != nil {
		acts.Files.CDN = s.Client // attachments come from Discord's CDN
	}
	return nil
}

// addIngress serves HTTP interactions when a public key is set. The gateway connection (DMs,
// and interactions when no interactions URL is configured) is `flexcord gateway`'s, one process
// per shard, so that ingress replicas never open one each; FLEXCORD_INGRESS_GATEWAY=true makes
// ingress open it itself, for a single-process deployment.
func (p *discordProvider) addIngress(ctx context.Context, log *slog.Logger, cfg *ingress.Config, env ingressEnv) error {
	dcfg := ingress.DiscordConfig{ApplicationID: p.appID, PublicKey: p.publicKey, ShardID: p.shardID, ShardCount: p.shardCount}
	// The gateway needs the ingress server, which exists once ingress.New runs the routes.
	server := make(chan *ingress.Server, 1)
	cfg.Routes = append(cfg.Routes, func(s *ingress.Server, r *mux.Router) {
		if len(dcfg.PublicKey) > 0 {
			ingress.DiscordRoutes(dcfg)(s, r)
		}
		select {
		case server <- s:
		default:
		}
	})
	switch {
	case !p.gateway && len(dcfg.PublicKey) == 0:
		log.Warn("Discord: DISCORD_PUBLIC_KEY is not set, so no HTTP interactions are served here, and the gateway is `flexcord gateway`'s (FLEXCORD_INGRESS_GATEWAY=true opens it here)")
		return nil
	case !p.gateway:
		log.Info("Discord: serving HTTP interactions; the gateway connection (DMs) is `flexcord gateway`'s")
		return nil
	case p.token == "":
		return errors.New("FLEXCORD_INGRESS_GATEWAY=true needs DISCORD_TOKEN: the gateway connection authenticates with the bot token")
	}
	s, err := p.discordSession()
	if err != nil {
		return err
	}
	dcfg.Session = s
	state := watchGateway(s)
	env.ready.add("discord gateway", state.check)
	env.goFn(func(ctx context.Context) error {
		select {
		case in := <-server:
			runGateway(ctx, in, dcfg, state, log)
		case <-ctx.Done():
		}
		return nil
	})
	return nil
}

const discordUsage = `Usage:
  flexcord discord register-commands [--guild ID]

Overwrites the application's slash commands (/helpme, /bug, /new_feature) with their names and
descriptions in every language. With --guild they are registered in that guild only, where they
appear at once; without it globally. The bot token comes from DISCORD_TOKEN (environment only).
`

func discordCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, discordUsage)
		return nil
	}
	switch args[0] {
	case "register-commands":
		return registerCommandsCommand(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprint(stderr, discordUsage)
		return fmt.Errorf("unknown discord command %q", args[0])
	}
}

func registerCommandsCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("discord register-commands", stderr)
	b := config.NewBinder(fs)
	var token, appID, guildID string
	b.Secret(&token, "", "DISCORD_TOKEN", "Discord bot token (environment only)")
	b.String(&appID, "application-id", "DISCORD_APPLICATION_ID", "", "Discord application id")
	b.String(&guildID, "guild", "", "", "register in this guild only instead of globally")
	if err := parse(fs, b, args); err != nil {
		return err
	}
	switch {
	case token == "":
		return errors.New("DISCORD_TOKEN is not set")
	case appID == "":
		return errors.New("DISCORD_APPLICATION_ID is not set (or pass --application-id)")
	case !snowflakeRE.MatchString(appID):
		return fmt.Errorf("DISCORD_APPLICATION_ID=%q is not a Discord id", appID)
	case guildID != "" && !snowflakeRE.MatchString(guildID):
		return fmt.Errorf("--guild %q is not a Discord id", guildID)
	}
	s, err := discordsession.New(token, nil)
	if err != nil {
		return err
	}
	return registerDiscordCommands(ctx, s, appID, guildID, stdout)
}

// registerDiscordCommands overwrites the application's commands (globally when guildID is empty)
// and prints what Discord registered.
func registerDiscordCommands(ctx context.Context, s *discordgo.Session, appID, guildID string, stdout io.Writer) error {
	where := "globally"
	if guildID != "" {
		where = "in guild " + guildID
	}
	got, err := s.ApplicationCommandBulkOverwrite(appID, guildID, ingress.CommandDefinitions(), discordgo.WithContext(ctx))
	if err != nil {
		var re *discordgo.RESTError
		if errors.As(err, &re) && re.Message != nil {
			return fmt.Errorf("register commands %s: discord %d: %s", where, re.Message.Code, re.Message.Message)
		}
		return fmt.Errorf("register commands %s: %w", where, err)
	}
	fmt.Fprintf(stdout, "Registered %d commands %s for application %s:\n", len(got), where, appID)
	for _, c := range got {
		langs := 0
		if c.NameLocalizations != nil {
			langs = len(*c.NameLocalizations)
		}
		fmt.Fprintf(stdout, "  /%-12s id %s, %d localizations — %s\n", c.Name, c.ID, langs, c.Description)
	}
	return nil
}
