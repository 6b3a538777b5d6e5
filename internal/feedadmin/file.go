package feedadmin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/flexcord/flexcord/workflows"
)

// Source is a source as declared in a feeds file (FLEXCORD_FEEDS_FILE), YAML or JSON:
//
//	feeds:
//	  - name: blog
//	    url: https://example.com/feed.xml
//	    channel: "1100000000000000014"
//	    every: 10m      # optional, default 10m
//	    backfill: 1     # optional: items the first fetch posts, default 1
//	    title: Example  # optional: the name shown on posts
type Source struct {
	Name        string   `json:"name"`
	URL         string   `json:"url,omitempty"`
	Channel     string   `json:"channel"`
	Title       string   `json:"title,omitempty"`
	Every       Duration `json:"every,omitempty"`
	Backfill    *int     `json:"backfill,omitempty"`
	MaxPerRun   int      `json:"max_per_run,omitempty"`
	NoCrosspost bool     `json:"no_crosspost,omitempty"`
}

// Config is the Feed configuration the source declares.
func (s Source) Config() workflows.FeedConfig {
	return workflows.FeedConfig{
		Name: s.Name, URL: s.URL, ChannelID: s.Channel, Title: s.Title, Every: time.Duration(s.Every),
		Backfill: s.Backfill, MaxPerRun: s.MaxPerRun, NoCrosspost: s.NoCrosspost,
	}
}

// Duration is a time.Duration written as "10m" or "1h30m" (or a number of seconds) in files.
type Duration time.Duration

// UnmarshalJSON reads "10m" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err2 := json.Unmarshal(b, &secs); err2 != nil {
			return fmt.Errorf("a duration is written like \"10m\": %w", err)
		}
		*d = Duration(time.Duration(secs * float64(time.Second)))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("a duration is written like \"10m\" or \"1h30m\", not %q", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration like "10m0s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// File is a feeds file.
type File struct {
	Feeds []Source `json:"feeds"`
}

// LoadFile reads and checks a feeds file, YAML or JSON. Every problem names the source and field.
func LoadFile(path string) ([]Source, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("feeds file: %w", err)
	}
	return ParseFile(b, path)
}

// ParseFile parses the contents of a feeds file; name is used in errors.
func ParseFile(b []byte, name string) ([]Source, error) {
	js, err := yaml.YAMLToJSON(b) // JSON is YAML too
	if err != nil {
		return nil, fmt.Errorf("feeds file %s: %w", name, err)
	}
	var f File
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("feeds file %s: %w", name, err)
	}
	seen := map[string]bool{}
	var problems []string
	for i, s := range f.Feeds {
		if seen[s.Name] {
			problems = append(problems, fmt.Sprintf("feeds[%d]: source %q is declared twice", i, s.Name))
			continue
		}
		seen[s.Name] = true
		if err := CheckConfig(s.Config()); err != nil {
			problems = append(problems, fmt.Sprintf("feeds[%d]: %v", i, err))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("feeds file %s: %s", name, strings.Join(problems, "; "))
	}
	return f.Feeds, nil
}

// CheckConfig checks a source's configuration before it is sent to Temporal, with the Feed's own
// rules. A source without a URL is valid: it only takes pushed items.
func CheckConfig(c workflows.FeedConfig) error { return workflows.ValidateFeedConfig(c) }
