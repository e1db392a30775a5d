package postflight_test

import (
	"encoding/json"
	"errors"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestNoTestOnlyExports: every exported function and method of the module's
// non-test code is used by some non-test code. One that only tests call is
// API a caller could come to rely on (Store.DeleteTable and
// Store.RestampStatus were): it belongs in an export_test.go or a test
// helper. Uses are resolved by go/types against the packages' export data
// (go list -export), so a method is told from an SDK method of the same
// name.
func TestNoTestOnlyExports(t *testing.T) {
	const mod = "github.com/postflight/postflight"
	// Packages that exist for tests.
	testSupport := []string{mod + "/internal/testenv", mod + "/internal/faultproxy", mod + "/api/openapitest",
		mod + "/internal/localjvm/jvmtest"}
	// Methods other code finds by an anonymous interface (a named one is
	// found below).
	viaInterface := map[string]string{
		"RetryableError": "the AWS SDK's retry classification", "Is": "errors.Is", "Unwrap": "errors.Unwrap",
	}

	type listed struct {
		ImportPath, Dir, Export string
		GoFiles                 []string
		Module                  *struct{ Path string }
	}
	cmd := exec.Command("go", "list", "-export", "-deps", "-json=ImportPath,Dir,Export,GoFiles,Module", "./...")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	exports := map[string]string{}
	var ours []listed
	for dec := json.NewDecoder(strings.NewReader(string(out))); ; {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		exports[p.ImportPath] = p.Export
		if p.Module != nil && p.Module.Path == mod {
			ours = append(ours, p)
		}
	}
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		if e := exports[path]; e != "" {
			return os.Open(e)
		}
		return nil, errors.New("no export data for " + path)
	})

	type method struct {
		fn  *types.Func
		pos token.Position
	}
	var declared []method
	used := map[string]bool{}
	var pkgs []*types.Package
	for _, p := range ours {
		var files []*ast.File
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		info := &types.Info{Defs: map[*ast.Ident]types.Object{}, Uses: map[*ast.Ident]types.Object{}}
		pkg, err := (&types.Config{Importer: imp}).Check(p.ImportPath, fset, files, info)
		if err != nil {
			t.Fatalf("type-checking %s: %v", p.ImportPath, err)
		}
		pkgs = append(pkgs, pkg)
		for _, obj := range info.Uses {
			if fn, ok := obj.(*types.Func); ok {
				used[fn.Origin().FullName()] = true
			}
		}
		if slices.Contains(testSupport, p.ImportPath) {
			continue
		}
		for id, obj := range info.Defs {
			fn, ok := obj.(*types.Func)
			if !ok || !fn.Exported() || viaInterface[fn.Name()] != "" {
				continue
			}
			if recv := fn.Signature().Recv(); recv != nil {
				if _, isIface := recv.Type().Underlying().(*types.Interface); isIface {
					continue // an interface's method: its uses are the implementations'
				}
			}
			declared = append(declared, method{fn, fset.Position(id.Pos())})
		}
	}
	if len(declared) == 0 {
		t.Fatal("no exported functions found")
	}
	ifaces := namedInterfaces(pkgs)
	for _, m := range declared {
		if !used[m.fn.FullName()] && !implementsSome(m.fn, ifaces, imp) {
			t.Errorf("%s: %s is exported but only tests use it (move it to an export_test.go or a test helper)", m.pos, m.fn.FullName())
		}
	}
}

// namedInterfaces returns every named interface type declared at the top
// level of pkgs and of the packages they import, directly or not.
func namedInterfaces(pkgs []*types.Package) []*types.Interface {
	out := []*types.Interface{types.Universe.Lookup("error").Type().Underlying().(*types.Interface)}
	seen := map[*types.Package]bool{}
	var walk func(p *types.Package)
	walk = func(p *types.Package) {
		if seen[p] {
			return
		}
		seen[p] = true
		for _, name := range p.Scope().Names() {
			if tn, ok := p.Scope().Lookup(name).(*types.TypeName); ok {
				if i, ok := tn.Type().Underlying().(*types.Interface); ok && i.NumMethods() > 0 {
					out = append(out, i)
				}
			}
		}
		for _, q := range p.Imports() {
			walk(q)
		}
	}
	for _, p := range pkgs {
		walk(p)
	}
	return out
}

// implementsSome reports whether fn is a method by which its receiver
// implements one of ifaces: code holding the interface calls it, which
// go/types records as a use of the interface's method. The receiver is
// compared as imp has it: the interfaces' signatures name our types as
// they come from export data, not from the source checked here.
func implementsSome(fn *types.Func, ifaces []*types.Interface, imp types.Importer) bool {
	recv := fn.Signature().Recv()
	if recv == nil {
		return false
	}
	t := recv.Type()
	if p, ok := t.(*types.Pointer); ok {
		t = p.Elem()
	}
	if n, ok := t.(*types.Named); ok {
		if pkg, err := imp.Import(n.Obj().Pkg().Path()); err == nil {
			if tn, ok := pkg.Scope().Lookup(n.Obj().Name()).(*types.TypeName); ok {
				t = tn.Type()
			}
		}
	}
	for _, i := range ifaces {
		if obj, _, _ := types.LookupFieldOrMethod(i, false, nil, fn.Name()); obj == nil {
			continue
		}
		if types.Implements(t, i) || types.Implements(types.NewPointer(t), i) {
			return true
		}
	}
	return false
}
