package policies

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/lakirotator/lakirotator/internal/strictyaml"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
)

// Problem is one thing wrong in a policy file, with where it is; Path is
// the dotted field, e.g. "grace.compromise" ("" for the document).
type Problem = strictyaml.Problem

// LoadError lists every problem found in the policy files, sorted by file and
// position. Loading reports them all at once.
type LoadError = strictyaml.Error

// LoadDir loads every *.yaml and *.yml file in dir (not recursing) as one set.
func LoadDir(dir string) (*Set, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("policies: read directory: %w", err)
	}
	l := &loader{}
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			l.problems = append(l.problems, Problem{File: path, Message: "cannot read: " + err.Error()})
			continue
		}
		l.file(path, data)
	}
	if len(l.parsed) == 0 && len(l.problems) == 0 {
		l.problems = append(l.problems, Problem{File: dir, Message: "no policy files (*.yaml, *.yml)"})
	}
	return l.finish()
}

// Load loads one file's contents; name is used in messages.
func Load(name string, data []byte) (*Set, error) {
	l := &loader{}
	l.file(name, data)
	return l.finish()
}

type parsedPolicy struct {
	p          Policy
	nameNode   *yaml.Node
	scopesNode *yaml.Node
}

type loader struct {
	problems []Problem
	parsed   []parsedPolicy
	curFile  string
}

func (l *loader) add(n *yaml.Node, field, format string, args ...any) {
	p := Problem{File: l.curFile, Path: field, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	l.problems = append(l.problems, p)
}

func (l *loader) file(name string, data []byte) {
	l.curFile = name
	docs, err := strictyaml.Documents(data)
	if err != nil {
		line, msg := strictyaml.SyntaxError(err)
		l.problems = append(l.problems, Problem{File: name, Line: line, Message: "invalid YAML: " + msg})
		return
	}
	n := 0
	for _, doc := range docs {
		if len(doc.Content) == 0 {
			continue
		}
		n++
		l.policy(doc.Content[0])
	}
	if n == 0 {
		l.problems = append(l.problems, Problem{File: name, Message: "holds no policy"})
	}
}

// pairs returns the key/value pairs of a mapping, reporting duplicate and
// non-scalar keys.
func (l *loader) pairs(n *yaml.Node, field string) [][2]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		l.add(n, field, "expected a mapping, found %s", kindName(n))
		return nil
	}
	var out [][2]*yaml.Node
	strictyaml.Pairs(n, func(k, v *yaml.Node) { out = append(out, [2]*yaml.Node{k, v}) },
		func(k *yaml.Node) { l.add(k, field, "expected a field name, found %s", kindName(k)) },
		func(k, _ *yaml.Node) { l.add(k, join(field, k.Value), "field is given twice") })
	return out
}

func join(parent, field string) string {
	if parent == "" {
		return field
	}
	return parent + "." + field
}

// kindName names what a node is; a scalar by its value as written, so that
// "expected a list, found \"payments:read\"" shows what to change.
func kindName(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && !strictyaml.IsNull(n) {
		return fmt.Sprintf("%q", n.Value)
	}
	if strictyaml.IsNull(n) {
		return "nothing"
	}
	return strictyaml.Describe(n)
}

func (l *loader) str(n *yaml.Node, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		l.add(n, field, "expected a string, found %s", kindName(n))
		return "", false
	}
	return n.Value, true
}

func (l *loader) boolean(n *yaml.Node, field string) bool {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		l.add(n, field, "expected true or false, found %s", kindName(n))
		return false
	}
	return n.Value == "true" || n.Value == "True" || n.Value == "TRUE"
}

func (l *loader) count(n *yaml.Node, field string) int {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		l.add(n, field, "expected a whole number, found %s", kindName(n))
		return 0
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil || v < 0 {
		l.add(n, field, "expected a whole number of 0 or more, found %s", kindName(n))
		return 0
	}
	return v
}

func (l *loader) duration(n *yaml.Node, field string) (time.Duration, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		l.add(n, field, "expected a duration like 90d or 36h, found %s", kindName(n))
		return 0, false
	}
	d, err := strictyaml.ParseDuration(n.Value)
	if err != nil {
		l.add(n, field, "%v", err)
		return 0, false
	}
	return d, true
}

func (l *loader) strings(n *yaml.Node, field string) []*yaml.Node {
	if n.Kind != yaml.SequenceNode {
		l.add(n, field, "expected a list, found %s", kindName(n))
		return nil
	}
	var out []*yaml.Node
	for i, item := range n.Content {
		if _, ok := l.str(item, field+"["+strconv.Itoa(i)+"]"); ok {
			out = append(out, item)
		}
	}
	return out
}

// finish runs the checks across files and builds the set.
func (l *loader) finish() (*Set, error) {
	set := &Set{byName: map[string]Policy{}}
	first := map[string]parsedPolicy{}
	for _, pp := range l.parsed {
		if pp.p.Name == "" {
			continue
		}
		if prev, dup := first[pp.p.Name]; dup {
			l.curFile = pp.p.File
			l.add(pp.nameNode, "name", "policy %q is already defined at %s:%d", pp.p.Name, prev.p.File, prev.nameNode.Line)
			continue
		}
		first[pp.p.Name] = pp
		set.byName[pp.p.Name] = pp.p
	}
	// The management key must hold what rotation needs, and no more.
	for _, pp := range l.parsed {
		p := pp.p
		if p.Kind != inventory.KindManagementKey || pp.scopesNode == nil || len(p.Scopes) == 0 {
			continue
		}
		l.curFile = p.File
		var needAll []laki.Scope
		for _, env := range p.Environments {
			need := set.RotationScopes(env)
			needAll = append(needAll, need...)
			if missing := ScopeDiff(need, p.Scopes); len(missing) > 0 {
				l.add(pp.scopesNode, "scopes", "lacks %s that rotation in %s needs (LakiConnect refuses to grant scopes the caller lacks)", scopeList(missing), env)
			}
		}
		if extra := ScopeDiff(p.Scopes, needAll); len(extra) > 0 && len(p.Environments) > 0 {
			l.add(pp.scopesNode, "scopes", "%s not needed for rotation: the management key must hold only what rotation needs", scopeList(extra))
		}
	}
	if len(l.problems) > 0 {
		sort.SliceStable(l.problems, func(i, j int) bool {
			a, b := l.problems[i], l.problems[j]
			if a.File != b.File {
				return a.File < b.File
			}
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Column < b.Column
		})
		return nil, &LoadError{Problems: l.problems}
	}
	return set, nil
}
