package transcript

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
	"time"
)

// Formats Render writes.
const (
	FormatMarkdown = "md"
	FormatHTML     = "html"
	FormatJSON     = "json"
)

// Formats lists the formats Render accepts.
var Formats = []string{FormatMarkdown, FormatHTML, FormatJSON}

// TimeLayout is how transcripts show times, always in UTC.
const TimeLayout = "2006-01-02 15:04:05 UTC"

// FormatTime shows t in UTC the way transcripts do; the zero time shows as "".
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeLayout)
}

// Render writes entries, in the order given, as a document for the member or an operator:
//
//   - "md": Markdown meant to be read as plain text too. Each message under who wrote it and when;
//     attachments by name with their notes; edits and deletions where they happened, as
//     "(edited) …" and "(deleted a message)".
//   - "html": one self-contained page (no scripts, styles inline, nothing loaded from elsewhere),
//     everything the member or an agent wrote escaped.
//   - "json": the entries themselves, as an array.
func Render(w io.Writer, title string, entries []Entry, format string) error {
	switch format {
	case FormatMarkdown:
		return renderMarkdown(w, title, entries)
	case FormatHTML:
		return htmlPage.Execute(w, htmlData{Title: title, Entries: viewEntries(entries)})
	case FormatJSON:
		utc := make([]Entry, len(entries))
		for i, e := range entries {
			e.At = e.At.UTC()
			utc[i] = e
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(utc)
	default:
		return fmt.Errorf("transcript: unknown format %q (want %s)", format, strings.Join(Formats, ", "))
	}
}

// kinds are the entry kinds the documents know.
var kinds = []string{KindMember, KindBot, KindAgent, KindSystem, KindEdit, KindDelete, KindForm}

// entryView is an entry as the documents show it.
type entryView struct {
	Kind, Who, At, DateTime string
	// Tag is "(edited)" or "(deleted a message)".
	Tag         string
	Text        string
	System      bool
	Attachments []string
	Fields      []Field
}

func viewEntries(entries []Entry) []entryView {
	out := make([]entryView, 0, len(entries))
	for _, e := range entries {
		v := entryView{Kind: "other", Who: who(e), At: FormatTime(e.At), Text: e.Text, Fields: e.Fields}
		if slices.Contains(kinds, e.Kind) {
			v.Kind = e.Kind
		}
		if !e.At.IsZero() {
			v.DateTime = e.At.UTC().Format(time.RFC3339)
		}
		switch e.Kind {
		case KindEdit:
			v.Tag = "(edited)"
		case KindDelete:
			v.Tag, v.Text = "(deleted a message)", ""
		case KindSystem:
			v.System = true
		}
		for _, a := range e.Attachments {
			v.Attachments = append(v.Attachments, describeAttachment(a))
		}
		out = append(out, v)
	}
	return out
}

// who is the author as shown: the entry's name, else what kind of author it is.
func who(e Entry) string {
	if e.Name != "" {
		return e.Name
	}
	switch e.Kind {
	case KindBot:
		return "Support bot"
	case KindAgent:
		return "Agent"
	case KindSystem:
		return ""
	default:
		return "Member"
	}
}

// describeAttachment is "name (type, size)", then the note: "video.mp4 (video/mp4, 30.0 MB) — too large".
func describeAttachment(a Attachment) string {
	name := a.Name
	if name == "" {
		name = "file"
	}
	var about []string
	if a.ContentType != "" {
		about = append(about, a.ContentType)
	}
	if a.Size > 0 {
		about = append(about, humanSize(a.Size))
	}
	s := name
	if len(about) > 0 {
		s += " (" + strings.Join(about, ", ") + ")"
	}
	if a.Note != "" {
		s += " — " + a.Note
	}
	return s
}

func humanSize(n int64) string {
	switch {
	case n < 1024:
		return fmt.Sprintf("%d B", n)
	case n < 1024*1024:
		return fmt.Sprintf("%.1f KB", float64(n)/1024)
	case n < 1024*1024*1024:
		return fmt.Sprintf("%.1f MB", float64(n)/(1024*1024))
	default:
		return fmt.Sprintf("%.1f GB", float64(n)/(1024*1024*1024))
	}
}

func renderMarkdown(w io.Writer, title string, entries []Entry) error {
	var b strings.Builder
	if title != "" {
		fmt.Fprintf(&b, "# %s\n\n", mdInline(title))
	}
	if len(entries) == 0 {
		b.WriteString("(no messages)\n")
	}
	for i, v := range viewEntries(entries) {
		if i > 0 {
			b.WriteString("\n")
		}
		if v.System {
			line := v.At
			if v.Who != "" {
				line += " · " + v.Who
			}
			if v.Text != "" {
				line += " · " + v.Text
			}
			fmt.Fprintf(&b, "_%s_\n", mdInline(line))
			writeAttachments(&b, v.Attachments)
			continue
		}
		lines := mdLines(v.Text)
		if v.Tag != "" {
			if len(lines) == 0 {
				lines = []string{v.Tag}
			} else {
				lines[0] = v.Tag + " " + lines[0]
			}
		}
		// Two trailing spaces keep lines apart when the Markdown is rendered.
		fmt.Fprintf(&b, "**%s** · %s", mdInline(v.Who), v.At)
		for _, l := range lines {
			b.WriteString("  \n" + l)
		}
		b.WriteString("\n")
		for _, f := range v.Fields {
			// A value's further lines stay in its list item: indented, with hard breaks.
			fmt.Fprintf(&b, "- **%s:** %s\n", mdInline(f.Label), strings.Join(mdLines(f.Value), "  \n  "))
		}
		writeAttachments(&b, v.Attachments)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeAttachments(b *strings.Builder, atts []string) {
	for _, a := range atts {
		fmt.Fprintf(b, "- Attachment: %s\n", mdInline(a))
	}
}

// mdLines splits text into lines made safe to place in Markdown: no raw HTML, and no line that
// would start a heading, list, quote or rule of the document's own.
func mdLines(text string) []string {
	text = strings.ReplaceAll(strings.TrimRight(text, "\n"), "\r\n", "\n")
	if text == "" {
		return nil
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = mdEscapeLine(l)
	}
	return lines
}

func mdEscapeLine(l string) string {
	l = strings.ReplaceAll(l, "<", `\<`)
	trimmed := strings.TrimLeft(l, " ")
	if trimmed != "" && strings.ContainsRune("#>-+*=|", rune(trimmed[0])) {
		l = l[:len(l)-len(trimmed)] + `\` + trimmed
	}
	return l
}

// mdInline makes text safe inside emphasis on one line.
func mdInline(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `_`, `\_`, "`", "\\`", `[`, `\[`, `]`, `\]`, `<`, `\<`)
	return r.Replace(s)
}

type htmlData struct {
	Title   string
	Entries []entryView
}

// htmlPage is self-contained: inline styles, no scripts, and a policy that forbids loading
// anything. html/template escapes every value.
var htmlPage = template.Must(template.New("transcript").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{if .Title}}{{.Title}}{{else}}Transcript{{end}}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #1f2328; line-height: 1.45; }
h1 { font-size: 1.4rem; }
.entry { margin: 1rem 0; padding: .5rem .75rem; border-left: 3px solid #d1d9e0; }
.entry.member, .entry.edit, .entry.delete, .entry.form { border-color: #5865f2; }
.entry.agent { border-color: #1f883d; }
.entry.bot { border-color: #bf8700; }
.entry.system { border: none; color: #59636e; font-style: italic; padding: 0 .75rem; }
.who { font-weight: 600; }
time { color: #59636e; font-size: .85rem; margin-left: .5rem; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; margin: .25rem 0 0; }
.tag { color: #59636e; font-style: italic; }
ul { margin: .25rem 0 0; padding-left: 1.25rem; }
dl { margin: .25rem 0 0; } dt { font-weight: 600; } dd { margin: 0 0 .25rem; white-space: pre-wrap; }
</style>
</head>
<body>
{{if .Title}}<h1>{{.Title}}</h1>
{{end}}{{range .Entries}}{{if .System}}<div class="entry system"><time datetime="{{.DateTime}}">{{.At}}</time>{{if .Who}} · {{.Who}}{{end}}{{if .Text}} · {{.Text}}{{end}}{{range .Attachments}}<br>Attachment: {{.}}{{end}}</div>
{{else}}<div class="entry {{.Kind}}"><span class="who">{{.Who}}</span><time datetime="{{.DateTime}}">{{.At}}</time>
{{if or .Tag .Text}}<p class="text">{{if .Tag}}<span class="tag">{{.Tag}}</span>{{if .Text}} {{end}}{{end}}{{.Text}}</p>
{{end}}{{if .Fields}}<dl>{{range .Fields}}<dt>{{.Label}}</dt><dd>{{.Value}}</dd>{{end}}</dl>
{{end}}{{if .Attachments}}<ul>{{range .Attachments}}<li>Attachment: {{.}}</li>{{end}}</ul>
{{end}}</div>
{{end}}{{else}}<p>(no messages)</p>
{{end}}</body>
</html>
`))
