package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/bwmarrin/discordgo"
)

// attachmentRef names, in a multipart message's payload_json, the file part files[ID].
type attachmentRef struct {
	ID       int    `json:"id"`
	Filename string `json:"filename"`
}

// sendWithFiles posts one message with files as multipart/form-data: the message as payload_json
// and each file as files[n], referenced by attachments[n]. It returns the created message's id.
func (d *Discord) sendWithFiles(ctx context.Context, channelID string, body *messageBody, files []*discordgo.File) (string, error) {
	body.Attachments = make([]attachmentRef, len(files))
	for i, f := range files {
		body.Attachments[i] = attachmentRef{ID: i, Filename: f.Name}
	}
	contentType, payload, err := discordgo.MultipartBodyWithJSON(body, files)
	if err != nil {
		return "", fmt.Errorf("encode the message and its files: %w", err)
	}
	endpoint := discordgo.EndpointChannelMessages(channelID)
	raw, err := d.s.RequestRaw(http.MethodPost, endpoint, contentType, payload, endpoint, 0, discordgo.WithContext(ctx))
	if err != nil {
		return "", err
	}
	var m discordgo.Message
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", fmt.Errorf("decode the created message: %w", err)
	}
	return m.ID, nil
}

// loadedFile is an attachment fetched for a DM.
type loadedFile struct {
	name, contentType string
	data              []byte
}

// loadFiles fetches the message's files. One that cannot be had is left out with a note in the
// message's text; a source failing for a while fails the activity, which is retried.
func (d *Discord) loadFiles(ctx context.Context, msg Message) (Message, []loadedFile, error) {
	if len(msg.Files) == 0 {
		return msg, nil, nil
	}
	var files []loadedFile
	var notes []string
	for _, f := range msg.Files {
		data, ct, err := d.Files.load(ctx, f)
		var gone *errFileUnavailable
		switch {
		case errors.As(err, &gone):
			d.log.Warn("attachment not passed on to the member", "file", f.Name, "reason", gone.reason)
			notes = append(notes, fileNote(f.Name, gone.reason))
		case err != nil:
			return msg, nil, unavailable("fetch the attachment "+f.Name, err.Error())
		default:
			files = append(files, loadedFile{name: f.Name, contentType: ct, data: data})
		}
	}
	if len(notes) > 0 {
		msg.Content = strings.TrimSpace(msg.Content + "\n" + strings.Join(notes, "\n"))
	}
	if len(files) == 0 {
		msg.Files = nil // buildBodies counts the files a body carries
	}
	return msg, files, nil
}

// sendLastWithFiles sends bodies in order, the last one with the files. Discord refusing the
// files as too large (40005) sends the last body again with a note in their place.
func (d *Discord) sendLastWithFiles(ctx context.Context, channelID string, bodies []*messageBody, files []loadedFile) ([]string, error) {
	if len(files) == 0 || len(bodies) == 0 {
		return d.sendBodies(ctx, channelID, bodies)
	}
	ids, err := d.sendBodies(ctx, channelID, bodies[:len(bodies)-1])
	if err != nil {
		return ids, err
	}
	last := bodies[len(bodies)-1]
	parts := make([]*discordgo.File, len(files))
	for i, f := range files {
		parts[i] = &discordgo.File{Name: f.name, ContentType: f.contentType, Reader: bytes.NewReader(f.data)}
	}
	id, err := d.sendWithFiles(ctx, channelID, last, parts)
	if discordCode(err) == codeEntityTooLarge {
		var notes []string
		for _, f := range files {
			notes = append(notes, fileNote(f.name, "Discord does not take a file that large"))
		}
		last.Attachments = nil
		last.Content = strings.TrimSpace(last.Content + "\n" + strings.Join(notes, "\n"))
		more, err := d.sendBodies(ctx, channelID, []*messageBody{last})
		return append(ids, more...), err
	}
	if err != nil {
		return ids, err
	}
	return append(ids, id), nil
}
