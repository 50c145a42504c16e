package locker_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The core imports the standard library and, of this module, only its
// own leaf helpers (which import the standard library alone).
func TestCoreImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string]bool{"github.com/lockerd/lockerd/locker/fanout": true}
	for _, imp := range strings.Fields(string(out)) {
		if strings.Contains(imp, ".") && !allowed[imp] {
			t.Errorf("the core imports %s", imp)
		}
	}
	out, err = exec.Command("go", "list", "-deps", "./fanout").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, ".") && dep != "github.com/lockerd/lockerd/locker/fanout" {
			t.Errorf("locker/fanout depends on %s", dep)
		}
	}
}

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
