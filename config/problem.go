package config

import "path/filepath"

// ProblemAt reports a problem found after loading (a directory the config
// names does not exist, a reference that does not resolve) at the position
// of the field that caused it, like every other config problem.
func (c *Config) ProblemAt(path, format string, args ...any) error {
	ps := &problems{file: c.file, pos: c.pos}
	ps.add(path, format, args...)
	return ps.err()
}

// Dir is the directory relative paths in the config are taken from: the
// config file's own (the working directory for a config read from a
// variable), as an absolute path.
func (c *Config) Dir() string { return absDir(c.file) }

func absDir(filename string) string {
	dir := filepath.Dir(filename)
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// NamedRef is a secret reference and the field that holds it.
type NamedRef struct {
	Field string
	Ref   SecretRef
}

// SecretRefs lists every secret reference the config holds, in file order
// of their sections.
func (c *Config) SecretRefs() []NamedRef {
	var out []NamedRef
	add := func(field string, r SecretRef) {
		if !r.IsZero() {
			out = append(out, NamedRef{Field: field, Ref: r})
		}
	}
	if s := c.Notifications.Slack; s != nil {
		add("notifications.slack.token", s.Token)
		add("notifications.slack.webhook_url", s.WebhookURL)
		add("notifications.slack.signing_secret", s.SigningSecret)
	}
	for i, t := range c.HTTP.Tokens {
		add(indexPath("http.tokens", i)+".token", t.Token)
	}
	return out
}
