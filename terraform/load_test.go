// Package terraform_test checks the Terraform in this directory without the
// AWS provider (which cannot be downloaded where the tests run, so
// `terraform validate` cannot either): it parses every .tf file with
// hashicorp/hcl and checks what validate would catch for this code, plus the
// least-privilege rules that tie the IAM policies to the Go code.
package terraform_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// module is one Terraform module directory, parsed.
type module struct {
	Dir       string
	Files     []*hclsyntax.Body
	Variables map[string]*hclsyntax.Block
	Outputs   map[string]*hclsyntax.Block
	Locals    map[string]*hclsyntax.Attribute
	Resources map[string]*hclsyntax.Block // "TYPE.NAME"
	Data      map[string]*hclsyntax.Block // "TYPE.NAME"
	Modules   map[string]*hclsyntax.Block
	// Moved holds the moved blocks: where a resource used to be declared.
	Moved []*hclsyntax.Block
	// Other holds top-level blocks that are none of the above (terraform, provider).
	Other []*hclsyntax.Block
}

// loadModule parses every .tf file of dir (not its subdirectories).
func loadModule(dir string) (*module, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s: no .tf files", dir)
	}
	sort.Strings(paths)
	m := &module{
		Dir:       dir,
		Variables: map[string]*hclsyntax.Block{},
		Outputs:   map[string]*hclsyntax.Block{},
		Locals:    map[string]*hclsyntax.Attribute{},
		Resources: map[string]*hclsyntax.Block{},
		Data:      map[string]*hclsyntax.Block{},
		Modules:   map[string]*hclsyntax.Block{},
	}
	parser := hclparse.NewParser()
	var problems []string
	dup := func(b *hclsyntax.Block, what string) {
		problems = append(problems, fmt.Sprintf("%s: %s declared twice", b.DefRange(), what))
	}
	for _, p := range paths {
		f, diags := parser.ParseHCLFile(p)
		if diags.HasErrors() {
			return nil, fmt.Errorf("parse %s: %s", p, diags.Error())
		}
		body := f.Body.(*hclsyntax.Body)
		m.Files = append(m.Files, body)
		if len(body.Attributes) > 0 {
			for _, a := range body.Attributes {
				problems = append(problems, fmt.Sprintf("%s: top-level argument %q is not allowed", a.SrcRange, a.Name))
			}
		}
		for _, b := range body.Blocks {
			switch b.Type {
			case "variable", "output", "module":
				if len(b.Labels) != 1 {
					problems = append(problems, fmt.Sprintf("%s: %s block needs one label", b.DefRange(), b.Type))
					continue
				}
				target := map[string]map[string]*hclsyntax.Block{"variable": m.Variables, "output": m.Outputs, "module": m.Modules}[b.Type]
				if _, ok := target[b.Labels[0]]; ok {
					dup(b, b.Type+" "+b.Labels[0])
				}
				target[b.Labels[0]] = b
			case "resource", "data":
				if len(b.Labels) != 2 {
					problems = append(problems, fmt.Sprintf("%s: %s block needs two labels", b.DefRange(), b.Type))
					continue
				}
				target := m.Resources
				if b.Type == "data" {
					target = m.Data
				}
				key := b.Labels[0] + "." + b.Labels[1]
				if _, ok := target[key]; ok {
					dup(b, b.Type+" "+key)
				}
				target[key] = b
			case "locals":
				for name, a := range b.Body.Attributes {
					if _, ok := m.Locals[name]; ok {
						problems = append(problems, fmt.Sprintf("%s: local %s declared twice", a.SrcRange, name))
					}
					m.Locals[name] = a
				}
			case "moved":
				if len(b.Labels) != 0 {
					problems = append(problems, fmt.Sprintf("%s: a moved block takes no label", b.DefRange()))
				}
				m.Moved = append(m.Moved, b)
			case "terraform", "provider":
				m.Other = append(m.Other, b)
			default:
				problems = append(problems, fmt.Sprintf("%s: unknown top-level block %q", b.DefRange(), b.Type))
			}
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return m, nil
}

func mustLoad(t *testing.T, dir string) *module {
	t.Helper()
	m, err := loadModule(dir)
	if err != nil {
		t.Fatalf("load %s: %v", dir, err)
	}
	return m
}

// moduleDirs lists every directory under modules/ and examples/ that holds .tf files.
func moduleDirs(t *testing.T) []string {
	t.Helper()
	var dirs []string
	for _, root := range []string{"modules", "examples"} {
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == ".terraform" {
				return filepath.SkipDir
			}
			if !d.IsDir() {
				return nil
			}
			if tf, _ := filepath.Glob(filepath.Join(p, "*.tf")); len(tf) > 0 {
				dirs = append(dirs, p)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("walk %s: %v", root, err)
		}
	}
	if len(dirs) < 5 {
		t.Fatalf("found only %d module directories (%v): expected the four modules and the example", len(dirs), dirs)
	}
	return dirs
}

// allBlocks calls fn for every block of body, depth first, with its parents.

// literalString returns the value of a string literal (quoted or template
// without interpolation).
func literalString(e hclsyntax.Expression) (string, bool) {
	switch x := e.(type) {
	case *hclsyntax.TemplateExpr:
		if !x.IsStringLiteral() {
			return "", false
		}
		v, diags := x.Value(nil)
		if diags.HasErrors() || v.Type() != cty.String || !v.IsKnown() || v.IsNull() {
			return "", false
		}
		return v.AsString(), true
	case *hclsyntax.LiteralValueExpr:
		if x.Val.Type() == cty.String && x.Val.IsKnown() && !x.Val.IsNull() {
			return x.Val.AsString(), true
		}
	case *hclsyntax.ObjectConsKeyExpr:
		if s, ok := literalString(x.Wrapped); ok {
			return s, true
		}
		if tr, ok := x.Wrapped.(*hclsyntax.ScopeTraversalExpr); ok && len(tr.Traversal) == 1 && !x.ForceNonLiteral {
			return tr.Traversal.RootName(), true
		}
	}
	return "", false
}

// shape renders a string expression with every interpolation as "${}", so
// that wildcards in the literal parts can be checked. ok is false for
// expressions that are not strings built from literals and interpolations.
func shape(e hclsyntax.Expression) (string, bool) {
	switch x := e.(type) {
	case *hclsyntax.TemplateExpr:
		var b strings.Builder
		for _, p := range x.Parts {
			if s, ok := literalString(p); ok {
				b.WriteString(s)
			} else {
				b.WriteString("${}")
			}
		}
		return b.String(), true
	case *hclsyntax.TemplateWrapExpr:
		return "${}", true
	case *hclsyntax.ScopeTraversalExpr, *hclsyntax.RelativeTraversalExpr, *hclsyntax.IndexExpr:
		return "${}", true
	}
	if s, ok := literalString(e); ok {
		return s, true
	}
	return "", false
}

// listItems returns the shapes of a list expression's elements, following
// references to locals of m (and for-expressions, by their value template).
// Anything else (a variable, a module output) is one opaque "${}" item.
func listItems(m *module, e hclsyntax.Expression) []string {
	switch x := e.(type) {
	case *hclsyntax.TupleConsExpr:
		var out []string
		for _, el := range x.Exprs {
			if s, ok := shape(el); ok {
				out = append(out, s)
			} else {
				out = append(out, listItems(m, el)...)
			}
		}
		return out
	case *hclsyntax.ForExpr:
		if s, ok := shape(x.ValExpr); ok {
			return []string{s}
		}
	case *hclsyntax.ScopeTraversalExpr:
		if x.Traversal.RootName() == "local" && len(x.Traversal) == 2 {
			if a, ok := x.Traversal[1].(hcl.TraverseAttr); ok {
				if l, ok := m.Locals[a.Name]; ok {
					return listItems(m, l.Expr)
				}
			}
		}
	case *hclsyntax.FunctionCallExpr:
		// concat / distinct / toset of lists: their elements.
		var out []string
		for _, a := range x.Args {
			out = append(out, listItems(m, a)...)
		}
		return out
	}
	return []string{"${}"}
}

// objectItem finds key in an object constructor anywhere inside e
// (through function calls like jsonencode and tuples), depth first.
func objectItem(e hclsyntax.Expression, key string) (hclsyntax.Expression, bool) {
	var found hclsyntax.Expression
	hclsyntax.VisitAll(e, func(n hclsyntax.Node) hcl.Diagnostics {
		if found != nil {
			return nil
		}
		if o, ok := n.(*hclsyntax.ObjectConsExpr); ok {
			for _, it := range o.Items {
				if k, ok := literalString(it.KeyExpr); ok && k == key {
					found = it.ValueExpr
					return nil
				}
			}
		}
		return nil
	})
	return found, found != nil
}

// tableEntry is one entry of a dynamic block's literal for_each table.
type tableEntry struct {
	Where string // file:line of the entry
	Key   string
	Value *hclsyntax.ObjectConsExpr
}

// tableEntries returns the entries of a dynamic block's for_each when it is
// a literal object of objects (string keys); ok is false otherwise.
func tableEntries(b *hclsyntax.Block) (entries []tableEntry, ok bool) {
	fe, has := b.Body.Attributes["for_each"]
	if !has {
		return nil, false
	}
	table, isObj := fe.Expr.(*hclsyntax.ObjectConsExpr)
	if !isObj {
		return nil, false
	}
	for _, it := range table.Items {
		k, isLit := literalString(it.KeyExpr)
		v, isObj := it.ValueExpr.(*hclsyntax.ObjectConsExpr)
		if !isLit || !isObj {
			return nil, false
		}
		entries = append(entries, tableEntry{Where: it.KeyExpr.Range().String(), Key: k, Value: v})
	}
	return entries, true
}

// dynamicIterator is the name a dynamic block's content uses for the
// current element: its iterator argument, or the block's label.
func dynamicIterator(b *hclsyntax.Block) string {
	if a, ok := b.Body.Attributes["iterator"]; ok {
		if tr, ok := a.Expr.(*hclsyntax.ScopeTraversalExpr); ok {
			return tr.Traversal.RootName()
		}
	}
	return b.Labels[0]
}

// resolve returns what x stands for in this entry when x is ITERATOR.key or
// ITERATOR.value.FIELD, and x itself otherwise.
func (e tableEntry) resolve(iterator string, x hclsyntax.Expression) hclsyntax.Expression {
	tr, ok := x.(*hclsyntax.ScopeTraversalExpr)
	if !ok || tr.Traversal.RootName() != iterator || len(tr.Traversal) < 2 {
		return x
	}
	attr := func(i int) string {
		if a, ok := tr.Traversal[i].(hcl.TraverseAttr); ok {
			return a.Name
		}
		return ""
	}
	switch {
	case len(tr.Traversal) == 2 && attr(1) == "key":
		return &hclsyntax.LiteralValueExpr{Val: cty.StringVal(e.Key), SrcRange: tr.SrcRange}
	case len(tr.Traversal) == 3 && attr(1) == "value":
		for _, it := range e.Value.Items {
			if k, ok := literalString(it.KeyExpr); ok && k == attr(2) {
				return it.ValueExpr
			}
		}
	}
	return x
}

// sourceText returns the source of a range, for messages.
func sourceText(r hcl.Range) string {
	b, err := os.ReadFile(r.Filename)
	if err != nil || r.End.Byte > len(b) {
		return r.String()
	}
	return string(b[r.Start.Byte:r.End.Byte])
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
