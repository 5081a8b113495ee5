// Package strictyaml holds what the project's two YAML loaders (the config
// file in config/, the policy files in policies/) share: one kind of problem
// with its position, one error listing them all, the syntax and node helpers
// of a strict reading (no aliases, no duplicate keys, every problem reported
// at once), and one duration grammar.
package strictyaml
