package twilioemu

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Twilio's webhook connection overrides: a fragment on a webhook URL
// ("https://host/path#ct=1000&rt=5000&tt=15000&rc=5&rp=all") that changes
// how Twilio sends to it. The fragment is never sent, and the signature is
// computed over the URL without it. Documented parameters, ranges and
// defaults (docs "Webhooks (HTTP callbacks): Connection Overrides"):
//
//	ct  connect timeout, ms      100–10000  default 5000
//	rt  read timeout, ms         100–15000  default 15000
//	tt  total time for all attempts, ms  100–15000  default 15000
//	rc  retry count              0–5        default 1
//	rp  retry policy: a comma-separated list of 4xx, 5xx, ct (connect
//	    failure), rt (read failure or timeout) and all; default ct,rt
//	e, sni  edge and SNI: accepted and ignored
//
// A delivery whose URL has no fragment follows the emulator's RetryPolicy
// (every failure is retried, up to MaxAttempts). With a fragment, the
// emulator makes 1+rc attempts, retries only the failures rp names, bounds
// each attempt by ct+rt when rt is given (else by RetryPolicy.Timeout) and
// stops retrying once tt, when given, would be exceeded. Backoff between
// attempts still comes from RetryPolicy.
type connOverrides struct {
	set            bool // the URL had a fragment
	connectTimeout time.Duration
	readTimeout    time.Duration // 0: not given
	totalTimeout   time.Duration // 0: not given
	retryCount     int
	retryOn        map[string]bool
}

var overrideRanges = map[string]struct{ min, max int }{
	"ct": {100, 10000},
	"rt": {100, 15000},
	"tt": {100, 15000},
	"rc": {0, 5},
}

// retryClasses are the documented rp values.
var retryClasses = map[string]bool{"4xx": true, "5xx": true, "ct": true, "rt": true, "all": true}

// parseOverrides reads a connection-override fragment. Values out of range
// are clamped and unknown ones ignored; each such problem is reported.
func parseOverrides(fragment string) (connOverrides, []string) {
	ov := connOverrides{
		set:            true,
		connectTimeout: 5 * time.Second,
		retryCount:     1,
		retryOn:        map[string]bool{"ct": true, "rt": true},
	}
	var problems []string
	q, err := url.ParseQuery(fragment)
	if err != nil {
		problems = append(problems, fmt.Sprintf("malformed fragment: %v", err))
	}
	for key, vals := range q {
		v := vals[len(vals)-1]
		switch key {
		case "ct", "rt", "tt", "rc":
			n, err := strconv.Atoi(v)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s=%q is not a number", key, v))
				continue
			}
			r := overrideRanges[key]
			if n < r.min || n > r.max {
				problems = append(problems, fmt.Sprintf("%s=%d is outside %d–%d", key, n, r.min, r.max))
				n = min(max(n, r.min), r.max)
			}
			switch key {
			case "ct":
				ov.connectTimeout = time.Duration(n) * time.Millisecond
			case "rt":
				ov.readTimeout = time.Duration(n) * time.Millisecond
			case "tt":
				ov.totalTimeout = time.Duration(n) * time.Millisecond
			case "rc":
				ov.retryCount = n
			}
		case "rp":
			on := map[string]bool{}
			for _, c := range strings.Split(v, ",") {
				c = strings.ToLower(strings.TrimSpace(c))
				if !retryClasses[c] {
					problems = append(problems, fmt.Sprintf("rp value %q is not 4xx, 5xx, ct, rt or all", c))
					continue
				}
				on[c] = true
			}
			if len(on) > 0 {
				ov.retryOn = on
			}
		case "e", "sni":
		default:
			problems = append(problems, fmt.Sprintf("unknown override %q", key))
		}
	}
	return ov, problems
}

// retries reports whether a failure of the given class is retried.
func (ov connOverrides) retries(class string) bool {
	return ov.retryOn["all"] || (class != "" && ov.retryOn[class])
}

// failureClass names a failed attempt as the rp values do: "ct" when no
// connection was made, "rt" when the receiver did not answer (in time),
// "4xx" or "5xx" by status, "" for anything else (only rp=all retries it).
func failureClass(status int, connected bool, err error) string {
	switch {
	case err != nil && !connected:
		return "ct"
	case err != nil:
		return "rt"
	case status >= 400 && status < 500:
		return "4xx"
	case status >= 500 && status < 600:
		return "5xx"
	}
	return ""
}
