package strictyaml

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Problem is one thing wrong in a YAML file, with where it is.
type Problem struct {
	File    string
	Line    int // 1-based; 0 when unknown (a value built in code)
	Column  int // 1-based; 0 when unknown
	Path    string
	Message string
}

// String writes "file:line:col: path: message", leaving out what is unknown.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
		if p.Column > 0 {
			fmt.Fprintf(&b, ":%d", p.Column)
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error is every problem a load found, in file and position order.
type Error struct {
	Problems []Problem
}

// Error prints one "file:line:col: path: message" per line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// NewError returns nil for no problems, else an *Error with the problems
// ordered by file, line and column (keeping the given order among problems
// at one place) and repeats dropped.
func NewError(problems []Problem) error {
	if len(problems) == 0 {
		return nil
	}
	list := slices.Clone(problems)
	slices.SortStableFunc(list, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	return &Error{Problems: slices.Compact(list)}
}

var syntaxLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// SyntaxError splits a YAML parser error into the line it names (0 when it
// names none) and its message without the "yaml: line N:" prefix.
func SyntaxError(err error) (line int, message string) {
	if m := syntaxLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		return line, m[2]
	}
	return 0, strings.TrimPrefix(err.Error(), "yaml: ")
}
