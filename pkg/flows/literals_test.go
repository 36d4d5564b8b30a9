package flows_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/flows"
)

// TestNoFlowIDLiteralOutsideItsHome walks the repository's Go code and
// finds no string literal naming a flow of flows.yaml outside that flow's
// own package (services/transform/flows/<id>/) and tests: loader,
// reconciler, transform, ingest, the CLI and pkg look flows up by id from
// flows.yaml and the registry. Comments and import paths do not count;
// testdata and _test.go files are tests.
func TestNoFlowIDLiteralOutsideItsHome(t *testing.T) {
	root := filepath.Join("..", "..")
	inv, err := flows.Load(filepath.Join(root, "flows.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ids := inv.IDs()
	if len(ids) == 0 {
		t.Fatal("flows.yaml declares no flows")
	}
	home := filepath.Join(root, "services", "transform", "flows")
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "testdata", "node_modules", "vendor":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		own := ""
		if rel, err := filepath.Rel(home, path); err == nil && !strings.HasPrefix(rel, "..") {
			own, _, _ = strings.Cut(filepath.ToSlash(rel), "/")
		}
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		checked++
		imports := map[*ast.BasicLit]bool{}
		for _, im := range file.Imports {
			imports[im.Path] = true
		}
		ast.Inspect(file, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING || imports[lit] {
				return true
			}
			v, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			for _, id := range ids {
				if id != own && namesFlow(v, id) {
					t.Errorf("%s: string literal %s names flow %s: look it up from flows.yaml or the registry, or move it to services/transform/flows/%s/",
						fset.Position(lit.Pos()), lit.Value, id, id)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("only %d Go files checked: is %s the repository?", checked, root)
	}
}

// namesFlow reports whether s holds id as a whole word (not inside a
// longer token such as another flow's id).
func namesFlow(s, id string) bool {
	word := func(b byte) bool { return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '_' }
	for i := 0; ; {
		j := strings.Index(s[i:], id)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(id)
		if (start == 0 || !word(s[start-1])) && (end == len(s) || !word(s[end])) {
			return true
		}
		i = start + 1
	}
}
