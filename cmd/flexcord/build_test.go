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
