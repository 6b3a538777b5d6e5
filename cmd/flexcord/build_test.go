package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestProductionBuildLeavesOutDevPieces checks that the default build of the command links none
// of the development pieces: the embedded Temporal server, the UI server, the emulators, the
// sandbox page and the packages that assemble them.
func TestProductionBuildLeavesOutDevPieces(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	for _, tags := range []string{"", "dev"} {
		out, err := exec.Command(goBin, "list", "-tags", tags, "-deps", ".").CombinedOutput()
		if err != nil {
			t.Fatalf("go list -tags %q -deps: %v\n%s", tags, err, out)
		}
		deps := "\n" + string(out)
		for _, dev := range []string{
			"\ngo.temporal.io/server/", "\ngithub.com/temporalio/ui-server/",
			"\ngithub.com/flexcord/flexcord/sandbox/", "\ngithub.com/flexcord/flexcord/internal/devstack\n",
			"\ngithub.com/flexcord/flexcord/internal/devserver\n",
		} {
			if got := strings.Contains(deps, dev); got != (tags == "dev") {
				t.Errorf("go list -tags %q: links %s: %v", tags, strings.TrimSpace(dev), got)
			}
		}
	}
}

// TestProductionBuildLinksNarrowTwilioClient checks that the default build of the command links
// only the Twilio services flexcord calls (internal/twilioclient.RestClient), not twilio-go's
// twilio.RestClient with every Twilio API: those add some 20 MB to the binary.
func TestProductionBuildLinksNarrowTwilioClient(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := "\n" + string(out)
	for _, big := range []string{"\ngithub.com/twilio/twilio-go\n", "\ngithub.com/twilio/twilio-go/rest/api/"} {
		if strings.Contains(deps, big) {
			t.Errorf("go list -deps: links %s", strings.TrimSpace(big))
		}
	}
	if !strings.Contains(deps, "\ngithub.com/twilio/twilio-go/rest/conversations/v1\n") {
		t.Errorf("go list -deps: does not link github.com/twilio/twilio-go/rest/conversations/v1; is the list right?")
	}
}
