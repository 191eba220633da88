package skillbox_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// listed is one package as `go list -json` prints it.
type listed struct {
	ImportPath string
	Name       string
	Dir        string
	GoFiles    []string
	Imports    []string
	// TestGoFiles are in the package, XTestGoFiles in its _test package.
	TestGoFiles, XTestGoFiles []string
}

func goList(t *testing.T) []listed {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listed
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listed
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func isInternal(path string) bool {
	return strings.Contains(path, "/internal/") || strings.HasSuffix(path, "/internal")
}

// TestPublicSurface holds the rules of docs/RATIONALE.md, "A small public
// surface": every package outside internal/ is in its table, no backend
// imports another, and no exported name of a public package mentions a type
// from internal/ (an embedder could not name it).
func TestPublicSurface(t *testing.T) {
	rationale, err := os.ReadFile("docs/RATIONALE.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := strings.Cut(string(rationale), "## A small public surface")
	table, _, _ = strings.Cut(table, "\n## ")
	const module = "github.com/skillbox-dev/skillbox"
	backends := map[string]bool{}
	for _, b := range []string{"linux", "process", "pyodide", "gvisor"} {
		backends[module+"/sandbox/"+b] = true
	}
	for _, p := range goList(t) {
		if isInternal(p.ImportPath) {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		if rel == "" {
			rel = "skillbox"
		}
		if !strings.Contains(table, "`"+rel+"`") {
			t.Errorf("public package %s has no reason in RATIONALE.md's table", p.ImportPath)
		}
		if backends[p.ImportPath] {
			for _, imp := range p.Imports {
				if backends[imp] {
					t.Errorf("backend %s imports backend %s", p.ImportPath, imp)
				}
			}
		}
		if p.Name == "main" {
			continue
		}
		for _, f := range p.GoFiles {
			for _, leak := range internalInAPI(t, filepath.Join(p.Dir, f)) {
				t.Errorf("%s: %s", p.ImportPath, leak)
			}
		}
	}
}

// internalInAPI returns the exported declarations of a file whose types name
// a package under internal/: a function's or method's signature, a type's
// definition (exported fields and methods of structs and interfaces, embedded
// fields), a variable's or constant's declared type. A variable whose type is
// only inferred is not seen; go vet's type checker would be needed for that.
func internalInAPI(t *testing.T, file string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	internal := map[string]string{} // local name → import path
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		if !isInternal(path) {
			continue
		}
		name := path[strings.LastIndex(path, "/")+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		internal[name] = path
	}
	if len(internal) == 0 {
		return nil
	}
	var leaks []string
	// exportedFields drops a struct's unexported fields and an interface's
	// unexported methods, which are not API, from the walk.
	exportedFields := func(l *ast.FieldList) {
		kept := l.List[:0:0]
		for _, f := range l.List {
			if len(f.Names) == 0 || f.Names[0].IsExported() {
				kept = append(kept, f)
			}
		}
		l.List = kept
	}
	check := func(what string, n ast.Node) {
		if n == nil {
			return
		}
		ast.Inspect(n, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncLit, *ast.BlockStmt:
				return false
			case *ast.StructType:
				exportedFields(n.Fields)
			case *ast.InterfaceType:
				exportedFields(n.Methods)
			case *ast.SelectorExpr:
				if x, ok := n.X.(*ast.Ident); ok && internal[x.Name] != "" {
					leaks = append(leaks, what+" names "+internal[x.Name]+"."+n.Sel.Name)
				}
			}
			return true
		})
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() {
				continue
			}
			if d.Recv != nil {
				recv := d.Recv.List[0].Type
				if s, ok := recv.(*ast.StarExpr); ok {
					recv = s.X
				}
				if g, ok := recv.(*ast.IndexExpr); ok {
					recv = g.X
				}
				if id, ok := recv.(*ast.Ident); !ok || !id.IsExported() {
					continue
				}
			}
			check(d.Name.Name, d.Type)
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					if s.Name.IsExported() {
						check(s.Name.Name, s.Type)
					}
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.IsExported() {
							check(n.Name, s.Type)
						}
					}
				}
			}
		}
	}
	return leaks
}

// TestNoTestAssignsPackageVariables holds the rule of docs/RATIONALE.md, "One
// jail, many roots": test seams are options fixed when a value is built, so
// no test assigns a package-level variable of the code it tests (which would
// change it for every user of the package while the test runs).
func TestNoTestAssignsPackageVariables(t *testing.T) {
	for _, p := range goList(t) {
		vars := map[string]bool{}
		for _, f := range p.GoFiles {
			file, err := parser.ParseFile(token.NewFileSet(), filepath.Join(p.Dir, f), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range file.Decls {
				if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.VAR {
					for _, s := range g.Specs {
						for _, n := range s.(*ast.ValueSpec).Names {
							vars[n.Name] = true
						}
					}
				}
			}
		}
		if len(vars) == 0 {
			continue
		}
		check := func(f string, external bool) {
			fset := token.NewFileSet()
			// With object resolution, a name declared in the file (a local,
			// a parameter, a test's own variable) has an Obj; a package
			// variable of another file has none.
			file, err := parser.ParseFile(fset, filepath.Join(p.Dir, f), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			pkgName := ""
			for _, imp := range file.Imports {
				if path, _ := strconv.Unquote(imp.Path.Value); path == p.ImportPath {
					pkgName = p.Name
					if imp.Name != nil {
						pkgName = imp.Name.Name
					}
				}
			}
			ast.Inspect(file, func(n ast.Node) bool {
				as, ok := n.(*ast.AssignStmt)
				if !ok || as.Tok != token.ASSIGN {
					return true
				}
				for _, l := range as.Lhs {
					name := ""
					switch x := l.(type) {
					case *ast.Ident:
						if !external && x.Obj == nil {
							name = x.Name
						}
					case *ast.SelectorExpr:
						if id, ok := x.X.(*ast.Ident); ok && external && id.Obj == nil && id.Name == pkgName {
							name = x.Sel.Name
						}
					}
					if vars[name] {
						t.Errorf("%s: a test assigns %s's package variable %s; pass it at construction instead", fset.Position(as.Pos()), p.ImportPath, name)
					}
				}
				return true
			})
		}
		for _, f := range p.TestGoFiles {
			check(f, false)
		}
		for _, f := range p.XTestGoFiles {
			check(f, true)
		}
	}
}

// sandboxAPI are exported names of package sandbox that nothing in this
// module outside the backends uses, and are API all the same.
var sandboxAPI = map[string]string{
	"DefaultOutput":          "the documented defaults of Limits, with DefaultTimeout and DefaultMemory",
	"DefaultPids":            "the documented defaults of Limits",
	"DefaultStdio":           "the documented defaults of Limits",
	"FeatureCPU":             "a Feature a Spec can require",
	"FeatureFSIsolation":     "a Feature a Spec can require",
	"FeatureProcIsolation":   "a Feature a Spec can require",
	"Layer":                  "the type of Capabilities.Layers",
	"Usage":                  "the type of Result.Usage",
	"Capabilities.Layer":     "reads Probe's result",
	"Config.Decode":          "how Registration.New decodes its section",
	"Config.Errorf":          "how Registration.New reports a bad setting",
	"Setting.OneOf":          "how Registration.New reads a setting, with Bool, Int and Duration",
	"SecretBinding.GoString": "fmt's %#v, which must not print the value",
}

// TestSandboxExportsAreAPI holds the rule of docs/RATIONALE.md, "A small
// public surface", for package sandbox: each of its exported top-level names
// and methods is used by a package other than the backends (sandbox/linux,
// process, pyodide, gvisor) and internal/backend — tests included, as an
// embedder's code — or is in sandboxAPI; a helper only backends use belongs
// in internal/backend. Without a type checker, a method counts as used when
// any selector in those packages has its name, so a method sharing a used
// name escapes; a top-level name must be selected from the sandbox import.
func TestSandboxExportsAreAPI(t *testing.T) {
	const module = "github.com/skillbox-dev/skillbox"
	const sb = module + "/sandbox"
	backendOnly := map[string]bool{sb: true, module + "/internal/backend": true}
	for _, b := range []string{"linux", "process", "pyodide", "gvisor"} {
		backendOnly[sb+"/"+b] = true
	}
	pkgs := goList(t)
	exported := map[string]bool{} // "Name" or "Type.Method"
	for _, p := range pkgs {
		if p.ImportPath != sb {
			continue
		}
		for _, f := range p.GoFiles {
			file, err := parser.ParseFile(token.NewFileSet(), filepath.Join(p.Dir, f), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range file.Decls {
				switch d := d.(type) {
				case *ast.FuncDecl:
					if !d.Name.IsExported() {
						continue
					}
					if d.Recv == nil {
						exported[d.Name.Name] = true
						continue
					}
					recv := d.Recv.List[0].Type
					if s, ok := recv.(*ast.StarExpr); ok {
						recv = s.X
					}
					if id, ok := recv.(*ast.Ident); ok && id.IsExported() {
						exported[id.Name+"."+d.Name.Name] = true
					}
				case *ast.GenDecl:
					for _, s := range d.Specs {
						switch s := s.(type) {
						case *ast.TypeSpec:
							if s.Name.IsExported() {
								exported[s.Name.Name] = true
							}
						case *ast.ValueSpec:
							for _, n := range s.Names {
								if n.IsExported() {
									exported[n.Name] = true
								}
							}
						}
					}
				}
			}
		}
	}
	if len(exported) == 0 {
		t.Fatalf("no exported names found in %s", sb)
	}
	used := map[string]bool{}     // top-level names selected from the sandbox import
	selected := map[string]bool{} // every selector's name, for methods
	for _, p := range pkgs {
		if backendOnly[p.ImportPath] {
			continue
		}
		for _, f := range slices.Concat(p.GoFiles, p.TestGoFiles, p.XTestGoFiles) {
			file, err := parser.ParseFile(token.NewFileSet(), filepath.Join(p.Dir, f), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			local := ""
			for _, imp := range file.Imports {
				if path, _ := strconv.Unquote(imp.Path.Value); path == sb {
					local = "sandbox"
					if imp.Name != nil {
						local = imp.Name.Name
					}
				}
			}
			ast.Inspect(file, func(n ast.Node) bool {
				if s, ok := n.(*ast.SelectorExpr); ok {
					selected[s.Sel.Name] = true
					if id, ok := s.X.(*ast.Ident); ok && local != "" && id.Name == local {
						used[s.Sel.Name] = true
					}
				}
				return true
			})
		}
	}
	for name := range exported {
		_, method, isMethod := strings.Cut(name, ".")
		if sandboxAPI[name] != "" || used[name] || isMethod && selected[method] {
			continue
		}
		t.Errorf("sandbox.%s is used only by the backends: move it to internal/backend, or say in sandboxAPI why it is API", name)
	}
	for name := range sandboxAPI {
		if !exported[name] {
			t.Errorf("sandboxAPI lists %s, which package sandbox does not export", name)
		}
	}
}
