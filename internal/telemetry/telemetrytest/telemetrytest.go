// Package telemetrytest reads the Prometheus exposition that telemetry serves at /metrics, for
// tests that check what a process reports.
package telemetrytest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Exposition is one scrape of /metrics.
type Exposition string

// Scrape GETs /metrics from h (telemetry.Telemetry.MetricsHandler) and returns what it served.
func Scrape(t testing.TB, h http.Handler) Exposition {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d: %s", rec.Code, rec.Body.String())
	}
	body, _ := io.ReadAll(rec.Body)
	return Exposition(body)
}

// Help returns the text of the "# HELP name" line, and whether there is one.
func (e Exposition) Help(name string) (string, bool) {
	return e.comment("HELP", name)
}

// Type returns the type of the "# TYPE name" line (counter, gauge, histogram …).
func (e Exposition) Type(name string) string {
	typ, _ := e.comment("TYPE", name)
	return typ
}

func (e Exposition) comment(kind, name string) (string, bool) {
	prefix := "# " + kind + " " + name + " "
	for _, line := range strings.Split(string(e), "\n") {
		if strings.HasPrefix(line, prefix) {
			return strings.TrimPrefix(line, prefix), true
		}
	}
	return "", false
}

var labelPair = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// Value returns the sum of the samples named name whose labels include every pair of labels
// (name, value, name, value …), and how many samples matched.
func (e Exposition) Value(name string, labels ...string) (sum float64, n int) {
	for _, line := range strings.Split(string(e), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		series, value, ok := cutLast(line)
		if !ok {
			continue
		}
		metric, rawLabels, _ := strings.Cut(series, "{")
		if metric != name {
			continue
		}
		have := map[string]string{}
		for _, m := range labelPair.FindAllStringSubmatch(rawLabels, -1) {
			have[m[1]] = m[2]
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if v, ok := have[labels[i]]; !ok || v != labels[i+1] {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		f, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		sum += f
		n++
	}
	return sum, n
}

// cutLast splits a sample line into its series and its value.
func cutLast(line string) (series, value string, ok bool) {
	i := strings.LastIndexByte(line, ' ')
	if i < 0 {
		return "", "", false
	}
	return line[:i], line[i+1:], true
}
