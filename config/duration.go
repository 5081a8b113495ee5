package config

import (
	"time"

	"github.com/lakirotator/lakirotator/internal/strictyaml"
	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written as Go durations are ("90s", "15m",
// "2h30m") or with a leading whole number of days ("7d", "1d12h").
type Duration time.Duration

// Std returns the duration as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String writes the duration in the form ParseDuration reads, leaving out
// zero units: "7d", "1d12h", "15m", "1m30s", "0s".
func (d Duration) String() string { return strictyaml.FormatDuration(time.Duration(d)) }

// MarshalYAML writes the duration in the form ParseDuration reads.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// ParseDuration reads a non-negative duration: Go's form with an optional
// leading "<n>d" for days, the grammar the policy files share.
func ParseDuration(s string) (Duration, error) {
	d, err := strictyaml.ParseDuration(s)
	return Duration(d), err
}

func (d *Duration) decodeNode(dec *decoder, n *yaml.Node, path string) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		hint := ""
		if n.ShortTag() == "!!int" || n.ShortTag() == "!!float" {
			hint = " (add a unit: 90s, 15m, 2h, 7d)"
		}
		dec.problem(n, path, "expected a duration such as 90s, 15m, 2h or 7d, got %s%s", strictyaml.Describe(n), hint)
		return
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		dec.problem(n, path, "%v", err)
		return
	}
	*d = v
}
