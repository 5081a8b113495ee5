package config

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/lakirotator/lakirotator/internal/strictyaml"
)

// Problem is one thing wrong with a config file; Path is the field path, as
// in secrets[2].endpoint_id.
type Problem = strictyaml.Problem

// ValidationError holds every problem found in a config, sorted by position;
// its Error prints one "file:line:col: path: message" per line.
type ValidationError = strictyaml.Error

type position struct{ line, col int }

// positions remembers where each field path was written: the value's
// position, and for map entries also the key's.
type positions struct {
	values map[string]position
	keys   map[string]position
}

func newPositions() *positions {
	return &positions{values: map[string]position{}, keys: map[string]position{}}
}

// set reports whether the path was written in the file (with a non-null value).
func (p *positions) set(path string) bool {
	if p == nil {
		return false
	}
	_, ok := p.values[path]
	return ok
}

// of returns where path was written, or where its nearest written parent
// was: a missing field is reported at the mapping that lacks it.
func (p *positions) of(path string) position {
	if p == nil {
		return position{}
	}
	for {
		if pos, ok := p.values[path]; ok {
			return pos
		}
		if path == "" {
			return position{}
		}
		path = parentPath(path)
	}
}

func (p *positions) keyOf(path string) position {
	if p != nil {
		if pos, ok := p.keys[path]; ok {
			return pos
		}
	}
	return p.of(path)
}

// parentPath drops the last element of a field path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// childPath appends a field or map key to a path; keys that are not plain
// words are quoted, as in tag_filters["team:name"].
func childPath(path, key string) string {
	plain := key != ""
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			plain = false
			break
		}
	}
	if !plain {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// problems collects problems, placing each at its path's position.
type problems struct {
	file string
	pos  *positions
	list []Problem
	// undecodable holds paths whose value could not be read; checks of
	// them (and of what lies under them) would only repeat the problem.
	undecodable map[string]bool
}

func (ps *problems) markUndecodable(path string) {
	if ps.undecodable == nil {
		ps.undecodable = map[string]bool{}
	}
	ps.undecodable[path] = true
}

func (ps *problems) suppressed(path string) bool {
	for len(ps.undecodable) > 0 {
		if ps.undecodable[path] {
			return true
		}
		if path == "" {
			return false
		}
		path = parentPath(path)
	}
	return false
}

func (ps *problems) at(pos position, path, format string, args ...any) {
	ps.list = append(ps.list, Problem{File: ps.file, Line: pos.line, Column: pos.col, Path: path, Message: fmt.Sprintf(format, args...)})
}

// add reports a problem with the value at path (or its parent, if missing).
func (ps *problems) add(path, format string, args ...any) {
	if ps.suppressed(path) {
		return
	}
	ps.at(ps.pos.of(path), path, format, args...)
}

// addKey reports a problem with a map key.
func (ps *problems) addKey(path, format string, args ...any) {
	if ps.suppressed(path) {
		return
	}
	ps.at(ps.pos.keyOf(path), path, format, args...)
}

func (ps *problems) err() error {
	// Among problems at one place, the field path and message decide.
	list := slices.Clone(ps.list)
	slices.SortStableFunc(list, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column), cmp.Compare(a.Path, b.Path), cmp.Compare(a.Message, b.Message))
	})
	return strictyaml.NewError(list)
}
