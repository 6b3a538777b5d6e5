package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flexcord/flexcord/internal/config"
	"github.com/flexcord/flexcord/internal/feedadmin"
	"github.com/flexcord/flexcord/workflows"
)

func init() {
	register("feeds", feedsCommand)
}

const feedsUsage = `Usage:
  flexcord feeds add --url URL --channel ID [--name N] [--title T] [--every 10m] [--backfill 1]
  flexcord feeds list
  flexcord feeds show NAME
  flexcord feeds pause NAME [--note TEXT]
  flexcord feeds resume NAME [--note TEXT]
  flexcord feeds run NAME
  flexcord feeds remove NAME

Sources of #announcements: RSS, Atom or JSON Feed documents fetched every interval by a Temporal
Schedule (feed:NAME), each new item posted once, oldest first, in the channel. A new source posts
only its newest --backfill items, never its archive. Adding a source again changes its settings.
Failed posts: flexcord deliveries retry feed:NAME.
`

func feedsCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, feedsUsage)
		return errors.New("want: feeds add | list | show | pause | resume | run | remove")
	}
	verb := args[0]
	fs := newFlagSet("feeds "+verb, stderr)
	fs.Usage = func() { fmt.Fprint(stderr, feedsUsage) }
	b := config.NewBinder(fs)
	var address, namespace, note string
	var src feedadmin.Source
	var every time.Duration
	backfill := workflows.DefaultFeedBackfill
	bindTemporal(b, &address, &namespace)
	switch verb {
	case "add":
		fs.StringVar(&src.URL, "url", "", "the feed's URL (RSS, Atom or JSON Feed); empty: the source only takes pushed items")
		fs.StringVar(&src.Channel, "channel", "", "the Discord channel id to post in")
		fs.StringVar(&src.Name, "name", "", "the source's name (default: from the URL's host)")
		fs.StringVar(&src.Title, "title", "", "the name shown on posts (default: the feed's title)")
		fs.DurationVar(&every, "every", workflows.DefaultFeedEvery, "how often to fetch it")
		fs.IntVar(&backfill, "backfill", workflows.DefaultFeedBackfill, "how many of its newest items the first fetch posts")
		fs.IntVar(&src.MaxPerRun, "max-per-run", workflows.DefaultFeedMaxPerRun, "at most this many posts per fetch")
		fs.BoolVar(&src.NoCrosspost, "no-crosspost", false, "do not publish posts to servers following an announcement channel")
	case "pause", "resume":
		fs.StringVar(&note, "note", "", "why, for the record")
	case "list", "show", "run", "remove":
	default:
		fmt.Fprint(stderr, feedsUsage)
		return fmt.Errorf("unknown feeds command %q", verb)
	}
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	if err := b.Err(); err != nil {
		return err
	}
	var name string
	switch {
	case verb == "add" && len(pos) != 0:
		return errors.New("feeds add takes flags only (--url, --channel, --name…)")
	case verb == "list" && len(pos) != 0:
		return errors.New("feeds list takes no arguments")
	case verb != "add" && verb != "list" && len(pos) != 1:
		return fmt.Errorf("feeds %s takes one source name", verb)
	case verb != "add" && verb != "list":
		name = pos[0]
		if !workflows.ValidFeedName(name) {
			return fmt.Errorf("invalid source name %q", name)
		}
	}
	if verb == "add" {
		if src.Name == "" {
			src.Name = nameFromURL(src.URL)
		}
		src.Every, src.Backfill = feedadmin.Duration(every), &backfill
		if err := feedadmin.CheckConfig(src.Config()); err != nil {
			return err
		}
	}
	tc, err := dialOps(address, namespace)
	if err != nil {
		return err
	}
	defer tc.Close()

	switch verb {
	case "add":
		res, err := feedadmin.Apply(ctx, tc, src.Config())
		if err != nil {
			return err
		}
		what := "updated"
		if res.CreatedSchedule {
			what = "added"
		}
		fmt.Fprintf(stdout, "Source %s %s: posts to channel %s", src.Name, what, src.Channel)
		if src.URL != "" {
			fmt.Fprintf(stdout, ", fetched every %s (schedule %s)\n", every, workflows.FeedScheduleID(src.Name))
		} else {
			fmt.Fprintf(stdout, "; it has no URL and takes items pushed to POST /announcements/%s\n", src.Name)
		}
		return nil
	case "list":
		infos, err := feedadmin.List(ctx, tc)
		if err != nil {
			return err
		}
		printFeeds(stdout, infos, time.Now())
		return nil
	case "show":
		info := feedadmin.Get(ctx, tc, name)
		if info.Status == nil && !info.HasSchedule {
			return fmt.Errorf("no source named %q", name)
		}
		printFeed(stdout, info, time.Now())
		return nil
	case "pause":
		if err := feedadmin.Pause(ctx, tc, name, note); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Source %s paused: no fetch until `flexcord feeds resume %s`.\n", name, name)
		return nil
	case "resume":
		if err := feedadmin.Resume(ctx, tc, name, note); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Source %s resumed.\n", name)
		return nil
	case "run":
		r, err := feedadmin.Run(ctx, tc, name, "operator", 2*time.Minute)
		if err != nil {
			return fmt.Errorf("run source %s: %w", name, err)
		}
		fmt.Fprintf(stdout, "Source %s fetched: %s\n", name, describeFeedRun(r))
		return nil
	default: // remove
		found, err := feedadmin.Remove(ctx, tc, name, "flexcord CLI")
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("no source named %q", name)
		}
		fmt.Fprintf(stdout, "Source %s removed: its schedule is deleted and its Feed ended.\n", name)
		return nil
	}
}

// nameFromURL makes a source name from a feed URL's host ("https://blog.example.com/x" → "blog-example-com").
func nameFromURL(raw string) string {
	host := raw
	if u, err := url.Parse(raw); err == nil && u.Hostname() != "" {
		host = strings.TrimPrefix(u.Hostname(), "www.")
	}
	out := make([]rune, 0, len(host))
	dash := false
	for _, r := range host {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			out = append(out, r)
			dash = false
		case r >= 'A' && r <= 'Z':
			out = append(out, r-'A'+'a')
			dash = false
		case !dash && len(out) > 0:
			out = append(out, '-')
			dash = true
		}
	}
	s := string(out)
	for len(s) > 0 && s[len(s)-1] == '-' {
		s = s[:len(s)-1]
	}
	if len(s) > 48 {
		s = s[:48]
	}
	return s
}

func describeFeedRun(r workflows.FeedRunResult) string {
	switch {
	case r.NotModified:
		return "not modified since the last fetch"
	case r.New == 0:
		return fmt.Sprintf("%d item(s), nothing new", r.Items)
	}
	s := fmt.Sprintf("%d item(s), %d new, %d posted", r.Items, r.New, r.Posted)
	if r.Skipped > 0 {
		s += fmt.Sprintf(", %d not posted (the archive of a new source, or over the per-run cap)", r.Skipped)
	}
	if r.Failed > 0 {
		s += fmt.Sprintf(", %d failed", r.Failed)
	}
	return s
}

func printFeeds(w io.Writer, infos []feedadmin.Info, now time.Time) {
	if len(infos) == 0 {
		fmt.Fprintln(w, "No sources. Add one with: flexcord feeds add --url URL --channel ID")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tLAST FETCH\tLAST POSTED\tNEXT RUN\tFAILURES\tFAILED POSTS")
	for _, in := range infos {
		state, last, posted, failures, failedPosts := feedState(in), "-", "-", "-", "-"
		if st := in.Status; st != nil {
			if lf := st.LastFetch; lf != nil {
				last = ago(lf.FetchedAt, now) + ": " + oneLine(describeFeedRunShort(*lf), 40)
			}
			if p := st.LastPosted; p != nil {
				posted = ago(p.At, now) + ": " + oneLine(p.Title, 40)
			}
			failures = fmt.Sprintf("%d", st.Failures)
			failedPosts = fmt.Sprintf("%d", len(st.Failed))
		}
		next := "-"
		if !in.NextRun.IsZero() && !in.Paused {
			next = "in " + in.NextRun.Sub(now).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", in.Name, state, last, posted, next, failures, failedPosts)
	}
	_ = tw.Flush()
	for _, in := range infos {
		if in.Status != nil && in.Status.LastError != "" {
			fmt.Fprintf(w, "\n%s: last error: %s", in.Name, in.Status.LastError)
		}
		if in.StatusError != "" {
			fmt.Fprintf(w, "\n%s: %s", in.Name, in.StatusError)
		}
	}
	fmt.Fprintln(w)
}

func feedState(in feedadmin.Info) string {
	switch {
	case in.Status != nil && in.Status.Removed:
		return "removing"
	case in.Paused:
		return "paused"
	case !in.HasSchedule && in.Status != nil && in.Status.Config.URL == "":
		return "push only"
	case !in.HasSchedule:
		return "no schedule"
	case in.Status == nil:
		return "no feed"
	case in.Status.Failures > 0:
		return "failing"
	}
	return "active"
}

func describeFeedRunShort(r workflows.FeedRunResult) string {
	switch {
	case r.Error != "" && r.Items == 0 && !r.NotModified:
		return "failed"
	case r.NotModified:
		return "not modified"
	}
	return fmt.Sprintf("%d new, %d posted", r.New, r.Posted)
}

func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String() + " ago"
}

func printFeed(w io.Writer, in feedadmin.Info, now time.Time) {
	fmt.Fprintf(w, "Source %s (%s)\n", in.Name, feedState(in))
	if st := in.Status; st != nil {
		c := st.Config
		fmt.Fprintf(w, "  URL:         %s\n", orDash(c.URL))
		fmt.Fprintf(w, "  Channel:     %s\n", c.ChannelID)
		fmt.Fprintf(w, "  Every:       %s\n", c.EveryOrDefault())
		if st.FeedTitle != "" {
			fmt.Fprintf(w, "  Feed title:  %s\n", st.FeedTitle)
		}
		if lf := st.LastFetch; lf != nil {
			fmt.Fprintf(w, "  Last fetch:  %s (%s)\n", describeFeedRun(*lf), ago(lf.FetchedAt, now))
			if lf.Error != "" {
				fmt.Fprintf(w, "               %s\n", lf.Error)
			}
			for _, warn := range lf.Warnings {
				fmt.Fprintf(w, "               warning: %s\n", warn)
			}
		} else {
			fmt.Fprintln(w, "  Last fetch:  never")
		}
		if st.Failures > 0 {
			fmt.Fprintf(w, "  Failures:    %d in a row (%d in all); last: %s\n", st.Failures, st.TotalFailures, st.LastError)
		}
		if p := st.LastPosted; p != nil {
			fmt.Fprintf(w, "  Last posted: %s %s (%s)\n", p.Title, p.URL, ago(p.At, now))
		}
		fmt.Fprintf(w, "  Posted:      %d; remembered items: %d\n", st.Posted, st.Known)
		for _, d := range st.Pending {
			fmt.Fprintf(w, "  queued:      #%d %q\n", d.Seq, d.Preview)
		}
		for _, d := range st.Failed {
			fmt.Fprintf(w, "  failed:      #%d %q: %s\n", d.Seq, d.Preview, d.Error)
		}
		if len(st.Failed) > 0 {
			fmt.Fprintf(w, "  Retry them:  flexcord deliveries retry %s\n", workflows.FeedWorkflowID(in.Name))
		}
	} else {
		fmt.Fprintf(w, "  Feed:        %s\n", in.StatusError)
	}
	if in.HasSchedule {
		if in.Paused {
			fmt.Fprintf(w, "  Schedule:    paused (%s)\n", orDash(in.PauseNote))
		} else if !in.NextRun.IsZero() {
			fmt.Fprintf(w, "  Next run:    in %s\n", in.NextRun.Sub(now).Round(time.Second))
		}
	}
}
