package strictyaml

import (
	"errors"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestProblemString(t *testing.T) {
	for _, c := range []struct {
		p    Problem
		want string
	}{
		{Problem{File: "f.yaml", Line: 5, Column: 10, Path: "max_age", Message: "bad"}, "f.yaml:5:10: max_age: bad"},
		{Problem{File: "f.yaml", Line: 2, Message: "invalid YAML: x"}, "f.yaml:2: invalid YAML: x"},
		{Problem{File: "f.yaml", Path: "a.b", Message: "bad"}, "f.yaml: a.b: bad"},
		{Problem{Path: "a.b", Message: "bad"}, "a.b: bad"},
		{Problem{Message: "bad"}, "bad"},
	} {
		if got := c.p.String(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

func TestNewErrorOrdersByPlaceAndKeepsOrderWithinOne(t *testing.T) {
	if NewError(nil) != nil {
		t.Fatal("no problems must be no error")
	}
	err := NewError([]Problem{
		{File: "b.yaml", Line: 1, Column: 1, Message: "b"},
		{File: "a.yaml", Line: 3, Column: 1, Message: "second at 3"},
		{File: "a.yaml", Line: 1, Column: 1, Path: "name", Message: "is required"},
		{File: "a.yaml", Line: 1, Column: 1, Path: "kind", Message: "is required"},
		{File: "a.yaml", Line: 1, Column: 1, Path: "kind", Message: "is required"},
	})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%T is not an *Error", err)
	}
	want := "a.yaml:1:1: name: is required\na.yaml:1:1: kind: is required\na.yaml:3:1: second at 3\nb.yaml:1:1: b"
	if err.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", err, want)
	}
}

func TestDocumentsAndSyntaxError(t *testing.T) {
	docs, err := Documents([]byte("a: 1\n---\nb: 2\n"))
	if err != nil || len(docs) != 2 {
		t.Fatalf("got %d documents, %v", len(docs), err)
	}
	_, err = Documents([]byte("a: 1\nb: c: d\n"))
	if err == nil {
		t.Fatal("a syntax error must be an error")
	}
	line, msg := SyntaxError(err)
	if line != 2 || msg != "mapping values are not allowed in this context" {
		t.Errorf("got line %d, %q", line, msg)
	}
}

func TestPairs(t *testing.T) {
	var root yaml.Node
	if err := yaml.Unmarshal([]byte("a: 1\nb: 2\na: 3\n? [x]\n: 4\n"), &root); err != nil {
		t.Fatal(err)
	}
	var keys, bad, dups []string
	Pairs(root.Content[0],
		func(k, v *yaml.Node) { keys = append(keys, k.Value+"="+v.Value) },
		func(k *yaml.Node) { bad = append(bad, Describe(k)) },
		func(k, first *yaml.Node) { dups = append(dups, k.Value+"@"+string(rune('0'+first.Line))) })
	if len(keys) != 2 || keys[0] != "a=1" || keys[1] != "b=2" || len(bad) != 1 || bad[0] != "a list" || len(dups) != 1 || dups[0] != "a@1" {
		t.Errorf("keys %v, bad %v, duplicates %v", keys, bad, dups)
	}
}
