package inventory

import (
	"maps"
	"slices"
	"strings"
	"time"
	"unique"

	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// held is what the catalog keeps of one secret: an Entry's contents in
// 160 bytes instead of 256, with the strings of its own in one allocation
// (at 100,000 secrets the catalog is most of an idle daemon's memory). An
// entry a listing does not make this way (a declared secret not in the
// store, a state the engine handed to Update) is kept whole in exact.
type held struct {
	name, arn  string
	endpointID string
	profile    unique.Handle[profile]
	owners     []string
	versions   []secretstore.VersionInfo
	tags       map[string]string
	changed    time.Time
	deletedAt  *time.Time
	exact      *Entry
}

// key is the entry's name in its own memory: keying the catalog by the
// listed name would keep the listing's string alive.
func (h *held) key() string {
	if h.exact != nil {
		return h.exact.Managed.Name
	}
	return h.name
}

// profile is what many secrets share: kind, environment, master merchant
// and policy, interned.
type profile struct {
	kind     Kind
	env      laki.Environment
	merchant string
	policy   string
}

func (h *held) entry() Entry {
	if h.exact != nil {
		return *h.exact
	}
	p := h.profile.Value()
	return Entry{
		Managed: ManagedSecret{Name: h.name, ARN: h.arn, Kind: p.kind, Environment: p.env, MasterMerchantID: p.merchant,
			EndpointID: h.endpointID, Policy: p.policy, Owners: h.owners},
		Stored: secretstore.Secret{Name: h.name, ARN: h.arn, Tags: h.tags, Versions: h.versions, DeletedAt: h.deletedAt, LastChangedAt: h.changed},
	}
}

// entry is what the catalog holds for a listed secret: what it holds
// already when the listing says nothing new of it (a steady refresh
// allocates nothing per secret), else a new one (keep).
func (c *Catalog) entry(m ManagedSecret, s secretstore.Secret) *held {
	s = c.slim(s)
	c.mu.RLock()
	old := c.entries[s.Name]
	c.mu.RUnlock()
	if old != nil {
		if e := old.entry(); !e.Missing && sameManaged(e.Managed, m) && sameStored(e.Stored, s) {
			return old
		}
	}
	return keep(m, s)
}

func sameManaged(a, b ManagedSecret) bool {
	return a.Name == b.Name && a.ARN == b.ARN && a.Kind == b.Kind && a.Environment == b.Environment &&
		a.MasterMerchantID == b.MasterMerchantID && a.EndpointID == b.EndpointID && a.Policy == b.Policy && slices.Equal(a.Owners, b.Owners)
}

func sameStored(a, b secretstore.Secret) bool {
	return a.Name == b.Name && a.ARN == b.ARN && a.Description == b.Description && maps.Equal(a.Tags, b.Tags) &&
		a.LastChangedAt.Equal(b.LastChangedAt) && sameTime(a.DeletedAt, b.DeletedAt) &&
		slices.EqualFunc(a.Versions, b.Versions, func(x, y secretstore.VersionInfo) bool {
			return x.ID == y.ID && x.CreatedAt.Equal(y.CreatedAt) && slices.Equal(x.Stages, y.Stages)
		})
}

func sameTime(a, b *time.Time) bool {
	return a == nil && b == nil || a != nil && b != nil && a.Equal(*b)
}

// keep makes the held form of a listed (slimmed) secret, in memory of its
// own. The SDK decodes each response's strings into one shared buffer, so
// a name kept as decoded would keep its whole page of the listing alive.
// The strings unique to the secret (ARN, name, endpoint id, version ids)
// are copied into one allocation, the name as part of the ARN when the ARN
// holds it; values that repeat across secrets are interned.
func keep(m ManagedSecret, s secretstore.Secret) *held {
	if m.Name != s.Name || m.ARN != s.ARN || s.Description != "" {
		e := Entry{Managed: m, Stored: s}
		return &held{exact: &e}
	}
	nameAt := strings.Index(s.ARN, ":secret:"+s.Name)
	if nameAt >= 0 {
		nameAt += len(":secret:")
	}
	size := len(s.ARN) + len(m.EndpointID)
	if nameAt < 0 {
		size += len(s.Name)
	}
	for _, v := range s.Versions {
		size += len(v.ID)
	}
	var b strings.Builder
	b.Grow(size)
	b.WriteString(s.ARN)
	if nameAt < 0 {
		b.WriteString(s.Name)
	}
	b.WriteString(m.EndpointID)
	for _, v := range s.Versions {
		b.WriteString(v.ID)
	}
	packed, at := b.String(), 0
	take := func(n int) string {
		v := packed[at : at+n]
		at += n
		return v
	}
	h := &held{arn: take(len(s.ARN)), tags: s.Tags, changed: s.LastChangedAt, deletedAt: s.DeletedAt,
		profile: unique.Make(profile{kind: m.Kind, env: m.Environment, merchant: m.MasterMerchantID, policy: m.Policy})}
	if nameAt >= 0 {
		h.name = h.arn[nameAt : nameAt+len(s.Name)]
	} else {
		h.name = take(len(s.Name))
	}
	h.endpointID = take(len(m.EndpointID))
	if m.Owners != nil {
		h.owners = make([]string, len(m.Owners))
		for i, o := range m.Owners {
			h.owners[i] = intern(o)
		}
	}
	if s.Versions != nil {
		h.versions = make([]secretstore.VersionInfo, len(s.Versions))
		for i, v := range s.Versions {
			var stages []string
			if v.Stages != nil {
				stages = make([]string, len(v.Stages))
				for j, st := range v.Stages {
					stages[j] = intern(st)
				}
			}
			h.versions[i] = secretstore.VersionInfo{ID: take(len(v.ID)), Stages: stages, CreatedAt: v.CreatedAt}
		}
	}
	return h
}

// intern returns the one copy of a value many secrets share.
func intern(v string) string { return unique.Make(v).Value() }
