package ingress

import (
	"github.com/bwmarrin/discordgo"

	"github.com/flexcord/flexcord/internal/i18n"
	"github.com/flexcord/flexcord/workflows"
)

// Slash command names, as registered (the English names; other languages are localizations).
const (
	CommandHelpMe     = "helpme"
	CommandBug        = "bug"
	CommandNewFeature = "new_feature"
)

// CommandDefinitions returns flexcord's slash commands with their names and descriptions in
// every catalog language, for ApplicationCommandBulkOverwrite. /helpme works in guilds and in the
// bot's DM; /bug and /new_feature in guilds, where the confirmation is posted.
func CommandDefinitions() []*discordgo.ApplicationCommand {
	guildInstall := []discordgo.ApplicationIntegrationType{discordgo.ApplicationIntegrationGuildInstall}
	command := func(name string, contexts ...discordgo.InteractionContextType) *discordgo.ApplicationCommand {
		names, descriptions := localizations("command."+name+".name"), localizations("command."+name+".description")
		return &discordgo.ApplicationCommand{
			Type:                     discordgo.ChatApplicationCommand,
			Name:                     name,
			NameLocalizations:        &names,
			Description:              i18n.T(i18n.Fallback, "command."+name+".description"),
			DescriptionLocalizations: &descriptions,
			Contexts:                 &contexts,
			IntegrationTypes:         &guildInstall,
		}
	}
	return []*discordgo.ApplicationCommand{
		command(CommandHelpMe, discordgo.InteractionContextGuild, discordgo.InteractionContextBotDM),
		command(CommandBug, discordgo.InteractionContextGuild),
		command(CommandNewFeature, discordgo.InteractionContextGuild),
	}
}

// localizations maps every Discord locale flexcord has a catalog for, other than English, to
// the text of key. Catalog names are Discord locale codes ("ko", "ja", "ro", "id", "pt-BR").
func localizations(key string) map[discordgo.Locale]string {
	out := map[discordgo.Locale]string{}
	for _, lang := range i18n.Languages() {
		if lang != i18n.Fallback {
			out[discordgo.Locale(lang)] = i18n.T(lang, key)
		}
	}
	return out
}

// Text input limits of the case modals.
const (
	maxTitleLen       = 100
	maxDescriptionLen = 2000
	maxStepsLen       = 1500
	maxPlatformLen    = 100
)

// caseModal is the modal that /bug or /new_feature opens, labelled in the member's language.
func caseModal(typ workflows.CaseType, locale string) *discordgo.InteractionResponse {
	t := func(key string) string { return i18n.T(locale, key) }
	row := func(in discordgo.TextInput) discordgo.MessageComponent {
		return discordgo.ActionsRow{Components: []discordgo.MessageComponent{in}}
	}
	title := row(discordgo.TextInput{
		CustomID: fieldTitle, Label: t("modal.field.title"), Style: discordgo.TextInputShort,
		Placeholder: t("modal.field.title_placeholder"), Required: true, MinLength: 3, MaxLength: maxTitleLen,
	})
	if typ == workflows.CaseFeature {
		return &discordgo.InteractionResponse{
			Type: discordgo.InteractionResponseModal,
			Data: &discordgo.InteractionResponseData{
				CustomID: modalFeature,
				Title:    t("modal.feature.title"),
				Components: []discordgo.MessageComponent{
					title,
					row(discordgo.TextInput{
						CustomID: fieldDescription, Label: t("modal.feature.description"), Style: discordgo.TextInputParagraph,
						Placeholder: t("modal.feature.description_placeholder"), Required: true, MaxLength: maxDescriptionLen,
					}),
				},
			},
		}
	}
	return &discordgo.InteractionResponse{
		Type: discordgo.InteractionResponseModal,
		Data: &discordgo.InteractionResponseData{
			CustomID: modalBug,
			Title:    t("modal.bug.title"),
			Components: []discordgo.MessageComponent{
				title,
				row(discordgo.TextInput{
					CustomID: fieldDescription, Label: t("modal.bug.description"), Style: discordgo.TextInputParagraph,
					Placeholder: t("modal.bug.description_placeholder"), Required: true, MaxLength: maxDescriptionLen,
				}),
				row(discordgo.TextInput{
					CustomID: fieldSteps, Label: t("modal.bug.steps"), Style: discordgo.TextInputParagraph,
					Placeholder: t("modal.bug.steps_placeholder"), MaxLength: maxStepsLen,
				}),
				row(discordgo.TextInput{
					CustomID: fieldPlatform, Label: t("modal.bug.platform"), Style: discordgo.TextInputShort,
					Placeholder: t("modal.bug.platform_placeholder"), MaxLength: maxPlatformLen,
				}),
			},
		},
	}
}
