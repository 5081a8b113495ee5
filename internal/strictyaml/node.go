package strictyaml

import (
	"bytes"
	"errors"
	"io"

	"gopkg.in/yaml.v3"
)

// Documents reads every YAML document of data. A syntax error ends the
// reading; the documents before it are returned with it.
func Documents(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, err
		}
		docs = append(docs, &doc)
	}
}

// Describe names what a node is, for "expected X, got Y" messages.
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return "a string"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!null":
			return "null"
		case "!!timestamp":
			return "a timestamp"
		}
		return "a scalar"
	}
	return "nothing"
}

// IsNull reports whether n is YAML's null (~, null, or nothing written).
func IsNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// Pairs walks the key/value pairs of the mapping n. A key that is not a
// plain scalar (an alias, a merge, a nested key) goes to badKey, a key
// written a second time goes to duplicate with the first one, and every
// other pair goes to fn, in the file's order.
func Pairs(n *yaml.Node, fn func(k, v *yaml.Node), badKey func(k *yaml.Node), duplicate func(k, first *yaml.Node)) {
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
			badKey(k)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			duplicate(k, first)
			continue
		}
		seen[k.Value] = k
		fn(k, v)
	}
}
