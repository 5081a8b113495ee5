package importrules

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// triggerOutcomes returns where src builds an event of the trigger step
// (events.StepTrigger or "trigger" given as a Step): an "accepted" or
// "refused" record of a trigger. Reading the step (a switch, a comparison)
// is not building one.
func triggerOutcomes(fset *token.FileSet, f *ast.File) []token.Position {
	isTriggerStep := func(e ast.Expr) bool {
		switch v := e.(type) {
		case *ast.SelectorExpr:
			x, ok := v.X.(*ast.Ident)
			return ok && x.Name == "events" && v.Sel.Name == "StepTrigger"
		case *ast.BasicLit:
			s, err := strconv.Unquote(v.Value)
			return v.Kind == token.STRING && err == nil && s == "trigger"
		}
		return false
	}
	isStep := func(e ast.Expr) bool {
		switch v := e.(type) {
		case *ast.Ident:
			return v.Name == "Step"
		case *ast.SelectorExpr:
			return v.Sel.Name == "Step"
		}
		return false
	}
	var at []token.Position
	ast.Inspect(f, func(n ast.Node) bool {
		switch v := n.(type) {
		case *ast.KeyValueExpr:
			if isStep(v.Key) && isTriggerStep(v.Value) {
				at = append(at, fset.Position(v.Pos()))
			}
		case *ast.AssignStmt:
			for i, lhs := range v.Lhs {
				if i < len(v.Rhs) && isStep(lhs) && isTriggerStep(v.Rhs[i]) {
					at = append(at, fset.Position(v.Pos()))
				}
			}
		}
		return true
	})
	return at
}

// The daemon is the one emitter of a trigger's "accepted" and "refused":
// the doors (HTTP API, security events, Slack command) translate and
// relay, so that each request is recorded exactly once whichever door it
// came through.
func TestOnlyTheDaemonRecordsTriggerOutcomes(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	var emitters []string
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			// devvault is its own module (Vault's code); testdata holds no product code.
			if strings.HasPrefix(d.Name(), ".") && rel != "." || d.Name() == "testdata" || rel == filepath.Join("internal", "testutil", "devvault") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		if under("daemon")(filepath.ToSlash(filepath.Dir(rel))) {
			return nil
		}
		for _, p := range triggerOutcomes(fset, f) {
			p.Filename = rel
			emitters = append(emitters, p.String())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("read only %d Go files: the walk no longer finds the tree", files)
	}
	slices.Sort(emitters)
	for _, at := range emitters {
		t.Errorf("%s builds a trigger-step event: only the daemon records a trigger's accepted or refused; a door relays the daemon's answer", at)
	}
}

// The scan finds what a door would write, and leaves readers alone.
func TestTriggerOutcomesFindsBuilders(t *testing.T) {
	const src = `package door
func f(bus Bus, e events.Event) {
	bus.Emit(ctx, events.Event{Step: events.StepTrigger, Outcome: events.OutcomeSucceeded})
	e.Step = "trigger"
	if e.Step == events.StepTrigger { }
	switch e.Step { case events.StepTrigger: }
	_ = events.Event{Step: events.StepAuth, Outcome: events.OutcomeRefused}
}`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "door.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, p := range triggerOutcomes(fset, f) {
		lines = append(lines, p.Line)
	}
	if want := []int{3, 4}; !slices.Equal(lines, want) {
		t.Errorf("found trigger-step events at lines %v, want %v", lines, want)
	}
}
