package locker_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayers keeps the layout's rule: nothing under locker/ depends on a
// driver or on the sync side, except the test kits (…test packages), which
// assemble real parts for other packages' tests.
func TestLayers(t *testing.T) {
	pkgs, err := exec.Command("go", "list", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(pkgs)) {
		if strings.HasSuffix(p, "test") {
			continue
		}
		deps, err := exec.Command("go", "list", "-deps", p).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", p, err)
		}
		for _, d := range strings.Fields(string(deps)) {
			if strings.Contains(d, "/lockerd/drivers/") || strings.Contains(d, "/lockerd/sync/") {
				t.Errorf("%s imports %s: the core side must not depend on drivers or sync", p, d)
			}
		}
	}
}
