package inventory

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// Lister is the part of a store discovery needs: paginated listing with tag
// filters, and a describe for secrets declared in the config file.
type Lister interface {
	List(ctx context.Context, filters []secretstore.TagFilter, fn func(secretstore.Secret) error) error
	Describe(ctx context.Context, name string) (secretstore.Secret, error)
}

// Entry is a managed secret with what the store last said about it
// (versions and their stages, tags; never the value).
type Entry struct {
	Managed ManagedSecret
	Stored  secretstore.Secret
	// Missing is set for a declared secret the store does not have (yet).
	Missing bool
}

// Catalog holds every managed secret: the ones declared in the config file
// and, when discovery is on, every secret tagged as managed. Refresh costs one
// paginated listing per environment plus one describe per declared secret;
// nothing per discovered secret, so ten thousand secrets cost a hundred list
// pages.
type Catalog struct {
	Stores   map[laki.Environment]Lister
	Declared []ManagedSecret
	// Discover turns on tag discovery; Filters narrow it further (the
	// managed tag is always required).
	Discover bool
	Filters  []secretstore.TagFilter
	// KeepTags are the tags kept with each entry once it is parsed (the
	// engine's bookkeeping); the rest are dropped, so that ten thousand
	// entries stay small. Nil keeps none.
	KeepTags []string

	mu sync.RWMutex
	// entries are never changed once stored (Update stores a new one), so
	// a refresh can keep an unchanged secret's as it is (held.go).
	entries     map[string]*held
	problems    []error
	refreshedAt time.Time
}

// Refresh re-reads the stores. Secrets whose tags are incomplete are left out
// and reported in Problems, naming the secret and the tag.
func (c *Catalog) Refresh(ctx context.Context, now time.Time) error {
	c.mu.RLock()
	entries := make(map[string]*held, len(c.entries))
	c.mu.RUnlock()
	var problems []error
	envs := make([]laki.Environment, 0, len(c.Stores))
	for env := range c.Stores {
		envs = append(envs, env)
	}
	sort.Slice(envs, func(i, j int) bool { return envs[i] < envs[j] })
	if c.Discover {
		filters := append([]secretstore.TagFilter{{Key: TagManaged, Values: []string{"true"}}}, c.Filters...)
		for _, env := range envs {
			err := c.Stores[env].List(ctx, filters, func(s secretstore.Secret) error {
				m, ok, err := FromTags(s.Name, s.ARN, s.Tags)
				switch {
				case err != nil:
					problems = append(problems, err)
				case !ok:
				case m.Environment != env && c.Stores[m.Environment] == c.Stores[env]:
					// One store serves both environments (the local store):
					// the secret is taken when its own environment is listed.
				case m.Environment != env:
					problems = append(problems, fmt.Errorf("secret %q is tagged %s=%s but lives in the %s store", s.Name, TagEnvironment, m.Environment, env))
				default:
					h := c.entry(m, s)
					entries[h.key()] = h
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("discovering managed secrets in %s: %w", env, err)
			}
		}
	}
	for _, m := range c.Declared {
		store, ok := c.Stores[m.Environment]
		if !ok {
			problems = append(problems, fmt.Errorf("secret %q: no store is configured for environment %s", m.Name, m.Environment))
			continue
		}
		s, err := store.Describe(ctx, m.Name)
		switch {
		case errors.Is(err, secretstore.ErrNotFound):
			entries[m.Name] = &held{exact: &Entry{Managed: m, Missing: true}}
			problems = append(problems, fmt.Errorf("secret %q is declared in the config but does not exist in the %s store", m.Name, m.Environment))
		case err != nil:
			return fmt.Errorf("reading declared secret %q: %w", m.Name, err)
		default:
			m.ARN = s.ARN
			// A declaration in the config file wins over tags.
			entries[m.Name] = c.entry(m, s)
		}
	}
	c.mu.Lock()
	c.entries, c.problems, c.refreshedAt = entries, problems, now
	c.mu.Unlock()
	return nil
}

// slim drops what the catalog does not need to keep of a listed secret.
func (c *Catalog) slim(s secretstore.Secret) secretstore.Secret {
	var kept map[string]string
	for _, k := range c.KeepTags {
		if v, ok := s.Tags[k]; ok {
			if kept == nil {
				kept = map[string]string{}
			}
			kept[k] = strings.Clone(v)
		}
	}
	s.Tags, s.Description = kept, ""
	return s
}

// Update replaces what the catalog knows of one secret's stored state, after
// the engine changed it, so the next decision needs no new listing.
func (c *Catalog) Update(name string, s secretstore.Secret) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[name]; ok {
		e := old.entry()
		e.Stored, e.Missing = s, false
		c.entries[name] = &held{exact: &e}
	}
}

// All returns every entry, sorted by name.
func (c *Catalog) All() []Entry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]Entry, 0, len(c.entries))
	for _, h := range c.entries {
		out = append(out, h.entry())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Managed.Name < out[j].Managed.Name })
	return out
}

// Get returns one entry.
func (c *Catalog) Get(name string) (Entry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if h, ok := c.entries[name]; ok {
		return h.entry(), true
	}
	return Entry{}, false
}

// Select returns the entries the predicate keeps, sorted by name.
func (c *Catalog) Select(keep func(Entry) bool) []Entry {
	var out []Entry
	for _, e := range c.All() {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// Problems returns what the last refresh could not use, one error per secret.
func (c *Catalog) Problems() []error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]error(nil), c.problems...)
}

// RefreshedAt is when the catalog was last read from the stores.
func (c *Catalog) RefreshedAt() time.Time {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.refreshedAt
}

// ProblemSummary joins the problems for a log line.
func (c *Catalog) ProblemSummary() string {
	var parts []string
	for _, p := range c.Problems() {
		parts = append(parts, p.Error())
	}
	return strings.Join(parts, "; ")
}

// CurrentSince is when the secret's AWSCURRENT version became current, as
// well as the listing tells: the version's creation time where the store
// gives it (the local store), else the secret's last change (Secrets
// Manager's listing carries no version dates; the last change of a managed
// secret is its last promotion or failure bookkeeping).
func (e Entry) CurrentSince() (time.Time, bool) {
	cur, ok := e.Stored.VersionWithStage(secretstore.StageCurrent)
	if !ok {
		return time.Time{}, false
	}
	if !cur.CreatedAt.IsZero() {
		return cur.CreatedAt, true
	}
	return e.Stored.LastChangedAt, !e.Stored.LastChangedAt.IsZero()
}
