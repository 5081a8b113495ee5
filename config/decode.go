package config

import (
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/lakirotator/lakirotator/internal/strictyaml"
	"gopkg.in/yaml.v3"
)

// decoder fills Go values from a YAML node tree, strictly: unknown fields,
// wrong types, duplicate keys and aliases are problems, and it goes on after
// each one so that a single run reports them all.
type decoder struct {
	ps  *problems
	pos *positions
}

// nodeDecoder is implemented by types that read their own YAML form.
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, path string)
}

func (d *decoder) here(n *yaml.Node) position { return position{n.Line, n.Column} }

func (d *decoder) problem(n *yaml.Node, path, format string, args ...any) {
	d.ps.markUndecodable(path)
	d.ps.at(d.here(n), path, format, args...)
}

var nodeDecoderType = reflect.TypeFor[nodeDecoder]()

// decode fills v (addressable) from n. A null node leaves v as it is and
// the path unset, so defaults apply.
func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind == yaml.AliasNode {
		d.problem(n, path, "YAML aliases (*name) are not supported: write the value out")
		return
	}
	if strictyaml.IsNull(n) {
		return
	}
	d.pos.values[path] = d.here(n)
	if v.Addr().Type().Implements(nodeDecoderType) {
		v.Addr().Interface().(nodeDecoder).decodeNode(d, n, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, path, v.Elem())
	case reflect.Struct:
		d.decodeStruct(n, path, v)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.problem(n, path, "expected a list, got %s", strictyaml.Describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, indexPath(path, i), s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		d.decodeMap(n, path, v)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			d.problem(n, path, "expected a string, got %s%s", strictyaml.Describe(n), quoteHint(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.problem(n, path, "expected true or false, got %s", strictyaml.Describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			d.problem(n, path, "expected a whole number, got %s", strictyaml.Describe(n))
			return
		}
		if n.Decode(&i) != nil || v.OverflowInt(i) {
			d.problem(n, path, "integer out of range")
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
			d.problem(n, path, "expected a number, got %s", strictyaml.Describe(n))
			return
		}
		if n.Decode(&f) != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.problem(n, path, "expected a finite number")
			return
		}
		v.SetFloat(f)
	default:
		// Only reachable if a field of an unsupported type is added to Config.
		d.problem(n, path, "internal error: cannot decode into %s", v.Type())
	}
}

// quoteHint suggests quoting a scalar that YAML read as another type.
func quoteHint(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return " (put it in quotes to make it a string)"
	}
	return ""
}

// mappingPairs checks that n is a mapping with distinct string keys and
// calls fn for each key and value.
func (d *decoder) mappingPairs(n *yaml.Node, path string, fn func(key string, k, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		d.problem(n, path, "expected a mapping, got %s", strictyaml.Describe(n))
		return
	}
	strictyaml.Pairs(n, func(k, v *yaml.Node) { fn(k.Value, k, v) },
		func(k *yaml.Node) {
			d.problem(k, path, "keys must be plain names (no aliases, merges or nested keys)")
		},
		func(k, first *yaml.Node) {
			d.problem(k, childPath(path, k.Value), "duplicate key, first written at line %d", first.Line)
		})
}

func (d *decoder) decodeStruct(n *yaml.Node, path string, v reflect.Value) {
	fields := yamlFields(v.Type())
	d.mappingPairs(n, path, func(key string, k, val *yaml.Node) {
		idx, ok := fields[key]
		if !ok {
			names := make([]string, 0, len(fields))
			for name := range fields {
				names = append(names, name)
			}
			slices.Sort(names)
			d.problem(k, childPath(path, key), "unknown field; known fields here: %s", strings.Join(names, ", "))
			return
		}
		d.decode(val, childPath(path, key), v.Field(idx))
	})
}

func (d *decoder) decodeMap(n *yaml.Node, path string, v reflect.Value) {
	m := reflect.MakeMap(v.Type())
	d.mappingPairs(n, path, func(key string, k, val *yaml.Node) {
		p := childPath(path, key)
		d.pos.keys[p] = d.here(k)
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, p, elem)
		m.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), elem)
	})
	v.Set(m)
}

// yamlFields maps a struct's yaml names to field indexes.
func yamlFields(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		out[name] = i
	}
	return out
}
