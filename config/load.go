package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"

	"gopkg.in/yaml.v3"

	"github.com/lakirotator/lakirotator/internal/strictyaml"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
)

// MaxFileSize bounds what Load reads: a config is a few kilobytes.
const MaxFileSize = 4 << 20

// Option changes how a config is loaded.
type Option func(*options)

type options struct {
	knownPolicies func(name string) bool
	policyCheck   func(name string, kind inventory.Kind, env laki.Environment) error
}

// WithKnownPolicies makes every policy name the config references (secrets,
// management keys, security webhooks) a problem unless known(name) is true,
// reported at the line that names it.
func WithKnownPolicies(known func(name string) bool) Option {
	return func(o *options) { o.knownPolicies = known }
}

// WithPolicyCheck runs check for every policy the config references, with
// the kind and environment of the secret that references it (so the caller
// can refuse, say, an api_key policy on a webhook secret, or a
// production-only policy on a sandbox secret). A non-nil error becomes a
// problem at the line that names the policy.
func WithPolicyCheck(check func(name string, kind inventory.Kind, env laki.Environment) error) Option {
	return func(o *options) { o.policyCheck = check }
}

// Load reads, parses and validates the config file at path. Relative paths
// inside it (policies_dir, store.local_path, TLS files, audit.file) are
// taken relative to the file's directory. A *ValidationError lists every
// problem found.
func Load(path string, opts ...Option) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("config: %s is larger than %d bytes", path, MaxFileSize)
	}
	return Parse(path, data, opts...)
}

// Parse parses and validates config data; filename names it in problems and
// anchors relative paths.
func Parse(filename string, data []byte, opts ...Option) (*Config, error) {
	ps := &problems{file: filename, pos: newPositions()}
	docs, err := strictyaml.Documents(data)
	if err != nil {
		ps.list = append(ps.list, yamlProblem(filename, err))
		if len(docs) == 0 {
			return nil, ps.err()
		}
	}
	if len(docs) == 0 {
		ps.at(position{1, 1}, "", "the file is empty; it starts with version: %d", CurrentVersion)
		return nil, ps.err()
	}
	if len(docs) > 1 {
		ps.at(position{docs[1].Line, docs[1].Column}, "", "only one YAML document is allowed (remove the ---)")
	}

	cfg := &Config{file: filename, pos: ps.pos}
	d := &decoder{ps: ps, pos: ps.pos}
	doc := docs[0]
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		d.problem(doc, "", "expected a mapping of settings, got %s", strictyaml.Describe(doc))
		return nil, ps.err()
	}
	ps.pos.values[""] = position{doc.Line, doc.Column}
	d.decodeStruct(doc, "", reflect.ValueOf(cfg).Elem())
	cfg.applyDefaults()
	cfg.resolvePaths(filepath.Dir(filename))
	cfg.validate(ps, opts...)
	if err := ps.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func yamlProblem(filename string, err error) Problem {
	line, msg := strictyaml.SyntaxError(err)
	return Problem{File: filename, Line: max(line, 1), Column: 1, Message: "YAML syntax: " + msg}
}

// Validate checks a Config again (one built in code, or one loaded and then
// changed), with the same checks and messages as Parse.
func (c *Config) Validate(opts ...Option) error {
	ps := &problems{file: c.file, pos: c.pos}
	c.validate(ps, opts...)
	return ps.err()
}

// resolvePaths anchors relative file paths at the config file's directory.
func (c *Config) resolvePaths(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.PoliciesDir)
	abs(&c.Store.LocalPath)
	abs(&c.HTTP.TLS.CertFile)
	abs(&c.HTTP.TLS.KeyFile)
	abs(&c.HTTP.TLS.ClientCAFile)
	abs(&c.Audit.File)
	if s := c.Notifications.Slack; s != nil {
		abs(&s.Token.File)
		abs(&s.WebhookURL.File)
		abs(&s.SigningSecret.File)
	}
	for i := range c.HTTP.Tokens {
		abs(&c.HTTP.Tokens[i].Token.File)
	}
	c.resolveVaultPaths(abs)
}
