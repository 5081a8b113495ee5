package config

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/laki"
)

// SecretRef says where a secret value is kept; the config never holds the
// value itself. Exactly one of Env, File and AWSSecret is set.
type SecretRef struct {
	// Env names an environment variable holding the value.
	Env string `yaml:"env,omitempty"`
	// File is a path to a file holding the value (a mounted secret); one
	// trailing newline is dropped. A file that its group or others may read
	// or write is refused, as ssh refuses such keys, unless
	// AllowGroupWorldAccess says the platform mounts secrets that way.
	File                  string `yaml:"file,omitempty"`
	AllowGroupWorldAccess bool   `yaml:"allow_group_world_access,omitempty"`
	// AWSSecret names a Secrets Manager secret whose AWSCURRENT value is the
	// secret, in the account of Environment.
	AWSSecret   string           `yaml:"aws_secret,omitempty"`
	Environment laki.Environment `yaml:"environment,omitempty"`

	// where is "file:line: path" of the reference, for resolution errors.
	where string
}

// IsZero reports whether no reference was configured.
func (r SecretRef) IsZero() bool {
	return r.Env == "" && r.File == "" && r.AWSSecret == "" && !r.AllowGroupWorldAccess
}

// String describes the reference (never a value), as in "env LAKI_TOKEN".
func (r SecretRef) String() string {
	switch {
	case r.Env != "":
		return "env " + r.Env
	case r.File != "":
		return "file " + r.File
	case r.AWSSecret != "":
		return fmt.Sprintf("aws_secret %s (%s)", r.AWSSecret, r.Environment)
	}
	return "no reference"
}

const refHint = "write {env: NAME} or {aws_secret: NAME} (or {file: PATH}) instead"

// MarshalYAML writes an unset reference as null, so that it reads back unset.
func (r SecretRef) MarshalYAML() (any, error) {
	if r.IsZero() {
		return nil, nil
	}
	type plain SecretRef
	return plain(r), nil
}

// decodeNode refuses a literal value without echoing it: a pasted secret
// must not reach an error message or a log.
func (r *SecretRef) decodeNode(d *decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode {
		d.problem(n, path, "secret values are never written in the config; %s", refHint)
		return
	}
	type plain SecretRef // without decodeNode
	var p plain
	d.decodeStruct(n, path, reflect.ValueOf(&p).Elem())
	*r = SecretRef(p)
	r.where = path
	if d.ps.file != "" {
		r.where = fmt.Sprintf("%s:%d: %s", d.ps.file, n.Line, path)
	}
}

// check lists what is wrong with the reference's form (nothing when it is sound).
func (r SecretRef) check(envs map[laki.Environment]*EnvironmentConfig) []string {
	set := 0
	for _, s := range []string{r.Env, r.File, r.AWSSecret} {
		if s != "" {
			set++
		}
	}
	var out []string
	switch {
	case set == 0:
		out = append(out, "the reference is empty; "+refHint)
	case set > 1:
		out = append(out, "set exactly one of env, file and aws_secret")
	}
	if r.Env != "" && !envVarName(r.Env) {
		// Not echoed: a value pasted here instead of a name is a secret.
		out = append(out, "env must be the name of an environment variable (letters, digits, _), not a value")
	}
	if r.AWSSecret != "" {
		if msg := checkSecretName(r.AWSSecret); msg != "" {
			out = append(out, "aws_secret "+msg)
		}
		if _, ok := envs[r.Environment]; !ok || !r.Environment.Valid() {
			out = append(out, fmt.Sprintf("aws_secret needs environment: one of the configured environments (%s)", envList(envs)))
		}
	} else if r.Environment != "" {
		out = append(out, "environment goes only with aws_secret")
	}
	if r.AllowGroupWorldAccess && r.File == "" {
		out = append(out, "allow_group_world_access goes only with file")
	}
	return out
}

func envVarName(s string) bool {
	for i, c := range s {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// Resolver turns a reference into the secret value it points at.
type Resolver interface {
	Resolve(ctx context.Context, ref SecretRef) (secret.Value, error)
}

// ResolverFunc adapts a function to Resolver.
type ResolverFunc func(ctx context.Context, ref SecretRef) (secret.Value, error)

func (f ResolverFunc) Resolve(ctx context.Context, ref SecretRef) (secret.Value, error) {
	return f(ctx, ref)
}

// ErrUnresolved is wrapped by every resolution error.
var ErrUnresolved = errors.New("secret reference not resolved")

// LocalResolver resolves env and file references itself and hands
// aws_secret references to AWS (the daemon sets it, backed by its store).
// Errors name the reference and where it was configured, never a value.
type LocalResolver struct {
	// LookupEnv defaults to os.LookupEnv.
	LookupEnv func(string) (string, bool)
	AWS       Resolver
}

func (l LocalResolver) Resolve(ctx context.Context, ref SecretRef) (secret.Value, error) {
	where := ref.where
	if where != "" {
		where += ": "
	}
	switch {
	case ref.Env != "" && ref.File == "" && ref.AWSSecret == "":
		lookup := l.LookupEnv
		if lookup == nil {
			lookup = os.LookupEnv
		}
		v, ok := lookup(ref.Env)
		if !ok || v == "" {
			return secret.Value{}, fmt.Errorf("%senvironment variable %s is not set or empty: %w", where, ref.Env, ErrUnresolved)
		}
		return secret.New(v), nil
	case ref.File != "" && ref.Env == "" && ref.AWSSecret == "":
		b, err := readSecretFile(ref)
		if err != nil {
			return secret.Value{}, fmt.Errorf("%s%v: %w", where, err, ErrUnresolved)
		}
		v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if v == "" {
			return secret.Value{}, fmt.Errorf("%ssecret file %s is empty: %w", where, ref.File, ErrUnresolved)
		}
		return secret.New(v), nil
	case ref.AWSSecret != "" && ref.Env == "" && ref.File == "":
		if l.AWS == nil {
			return secret.Value{}, fmt.Errorf("%s%s: no Secrets Manager resolver configured: %w", where, ref, ErrUnresolved)
		}
		v, err := l.AWS.Resolve(ctx, ref)
		if err != nil {
			return secret.Value{}, fmt.Errorf("%s%s: %w", where, ref, err)
		}
		return v, nil
	}
	return secret.Value{}, fmt.Errorf("%sreference must set exactly one of env, file and aws_secret: %w", where, ErrUnresolved)
}

// groupWorldAccess are the permission bits that let anyone but the owner
// read or write a file.
const groupWorldAccess fs.FileMode = 0o077

// readSecretFile reads a {file: PATH} reference, refusing a file its group
// or others may read or write unless the reference allows it. The mode is
// taken from the open file, so it is the mode of what is read.
func readSecretFile(ref SecretRef) ([]byte, error) {
	f, err := os.Open(ref.File)
	if err != nil {
		// os errors name the path and the cause, not the content.
		return nil, fmt.Errorf("read secret file: %v", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read secret file: %v", err)
	}
	if perm := info.Mode().Perm(); perm&groupWorldAccess != 0 && !ref.AllowGroupWorldAccess {
		return nil, fmt.Errorf("secret file %s has mode %04o: its group or others may read or write it; "+
			"chmod 600 %s, or, where the platform mounts secrets so, add allow_group_world_access: true to this reference",
			ref.File, perm, ref.File)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read secret file %s: %v", ref.File, err)
	}
	return b, nil
}
