package ingress

import (
	"testing"
	"time"
)

func TestBackfillReadsFromTheGapStart(t *testing.T) {
	gap := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	atGap := snowflakeAt(gap.Add(-backfillGapMargin))
	beforeGap := snowflakeAt(gap.Add(-time.Hour))
	afterGap := snowflakeAt(gap.Add(time.Minute)) // a live DM that came after the gap
	for _, tt := range []struct {
		name, last string
		gap        time.Time
		want       string
	}{
		{"no gap known: the newest message taken", afterGap, time.Time{}, afterGap},
		{"a live DM moved past the gap: read from the gap", afterGap, gap, atGap},
		{"the newest message taken is older than the gap", beforeGap, gap, beforeGap},
	} {
		if got := backfillFrom(tt.last, tt.gap); got != tt.want {
			t.Errorf("%s: backfillFrom = %s, want %s", tt.name, got, tt.want)
		}
	}
	if compareSnowflakes(snowflakeAt(gap), snowflakeAt(gap.Add(time.Millisecond))) >= 0 {
		t.Error("snowflakes do not follow time")
	}
}
