package hub_test

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The central stays a house a newcomer can read (docs/architecture.md,
// "The central"): no package of it over 3,000 lines of code, no
// interface over 15 methods, and the capabilities below the core import
// nothing above them — not the core, not the store engines, not the
// HTTP sides — so that each can be read, changed and tested alone.
func TestCentralLayout(t *testing.T) {
	const (
		maxLines   = 3000
		maxMethods = 15
		module     = "github.com/lockerd/lockerd/"
	)
	capabilities := []string{"alarm", "auth", "circulation", "egress", "fleet", "hubmetrics", "notice", "partition", "stock", "webhook"}
	above := []string{"sync/hub", "sync/hub/api", "sync/hub/console", "sync/hub/hubbolt", "sync/hub/pgstore", "sync/hub/hubtest",
		"sync/hub/orderpage", "sync/hub/requests", "sync/hub/hubclient", "sync/hub/storecopy"}
	lines := map[string]int{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Join("sync/hub", filepath.Dir(path)))
		lines[dir] += bytes.Count(src, []byte("\n"))
		f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			if it, ok := ts.Type.(*ast.InterfaceType); ok {
				methods := 0
				for _, m := range it.Methods.List {
					methods += max(len(m.Names), 1)
				}
				if methods > maxMethods {
					t.Errorf("%s: interface %s has %d methods (at most %d)", fset.Position(ts.Pos()), ts.Name.Name, methods, maxMethods)
				}
			}
			return true
		})
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			p = strings.TrimPrefix(p, module)
			pkg, _, _ := strings.Cut(strings.TrimPrefix(dir, "sync/hub/"), "/")
			if slices.Contains(capabilities, pkg) && slices.Contains(above, p) {
				t.Errorf("%s: capability %s imports %s, above it", path, pkg, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) < 10 {
		t.Fatalf("only %d packages found: %v", len(lines), lines)
	}
	for dir, n := range lines {
		if n >= maxLines {
			t.Errorf("%s: %d lines of code (under %d)", dir, n, maxLines)
		}
		// Each package's doc.go says what it owns.
		doc, err := os.ReadFile(filepath.Join(strings.TrimPrefix(strings.TrimPrefix(dir, "sync/hub"), "/"), "doc.go"))
		if err != nil || !bytes.HasPrefix(doc, []byte("// Package ")) {
			t.Errorf("%s: no doc.go beginning with its package comment", dir)
		}
	}
	t.Logf("largest: sync/hub %d lines", lines["sync/hub"])
}
