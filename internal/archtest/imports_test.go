// Package archtest enforces the import direction table of DESIGN.md: imports go one way, the
// target never imports the platform, engines never import the plan format.
package archtest

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/redline-dev/redline/"

// allowed lists, per package folder (a prefix: "target" covers target/...), the project folders
// its non-test code may import. Folders under one prefix may import each other only where listed.
// A package missing from this table fails the test: every new package takes a place in it.
var allowed = map[string][]string{
	"metrics":                {},
	"target/ledger":          {},
	"target/sqldb":           {},
	"target/sqldb/sqldbtest": {"target/sqldb"},
	"scenarios":              {},
	"load":                   {"metrics"},
	"chaos":                  {"metrics"},
	"chaos/mesh":             {"chaos", "metrics"}, // the one importer of Chaos Mesh's API module
	"shadow":                 {"metrics"},
	"verify":                 {"metrics", "internal/nearest"},
	"target":                 {"target", "shadow"},
	"plan":                   {"load", "chaos", "shadow", "verify", "metrics", "scenarios", "internal/nearest"},
	"run":                    {"plan", "load", "chaos", "shadow", "verify", "metrics"},
	"reports":                {"run", "verify", "metrics", "plan"},
	"internal/nearest":       {},
	"internal/cli":           {"*"},
	"internal/archtest":      {},
	"cmd":                    {"internal/cli"},
	"scripts":                {"*"},
}

// rule returns the longest table prefix that covers dir.
func rule(dir string) (string, bool) {
	best := ""
	for p := range allowed {
		if (dir == p || strings.HasPrefix(dir, p+"/")) && len(p) > len(best) {
			best = p
		}
	}
	return best, best != ""
}

func permits(from, imported string) bool {
	key, _ := rule(from)
	for _, a := range allowed[key] {
		if a == "*" || imported == a || strings.HasPrefix(imported, a+"/") {
			return true
		}
	}
	return false
}

func TestImportDirection(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); strings.HasPrefix(name, ".") || name == "testdata" || name == "bin" || name == "runs" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		dir := filepath.ToSlash(filepath.Dir(rel))
		if _, ok := rule(dir); !ok {
			t.Errorf("%s: package folder %q has no row in the import table", rel, dir)
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			ip, _ := strconv.Unquote(imp.Path.Value)
			if !strings.HasPrefix(ip, module) {
				if ip == "go.k6.io/k6" || strings.HasPrefix(ip, "go.k6.io/k6/") {
					t.Errorf("%s imports %s: AGPL, barred", rel, ip)
				}
				continue
			}
			target := strings.TrimPrefix(ip, module)
			if target == dir {
				continue
			}
			if !permits(dir, target) {
				t.Errorf("%s imports %s: %s may import only %v", rel, target, dir, allowed[mustRule(dir)])
			}
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}

func mustRule(dir string) string {
	k, _ := rule(dir)
	return k
}

func TestRuleTable(t *testing.T) {
	tests := []struct {
		from, to string
		want     bool
	}{
		{"load", "metrics", true},
		{"load", "plan", false},
		{"metrics", "load", false},
		{"target/unit", "target/ledger", true},
		{"target/unit", "load", false},
		{"target/ledger", "target/unit", false},
		{"plan", "run", false},
		{"run", "reports", false},
		{"reports", "run", true},
		{"internal/cli", "run", true},
	}
	for _, tt := range tests {
		if got := permits(tt.from, tt.to); got != tt.want {
			t.Errorf("permits(%q, %q) = %v, want %v", tt.from, tt.to, got, tt.want)
		}
	}
}
