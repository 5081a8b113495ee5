// Checks of where credentials live and where they are managed: the
// environments (AWS, LakiConnect, master merchants), the store, the
// declared secrets and discovery.

package config

import (
	"slices"
	"strings"
	"time"

	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
)

func (v *validator) environments() {
	c := v.c
	if len(c.Environments) == 0 {
		v.ps.add("environments", "required: configure sandbox, production or both")
	}
	// Walk in sorted order so duplicate-name problems name the first one stably.
	for _, name := range sortedKeys(c.Environments) {
		e := c.Environments[name]
		p := childPath("environments", string(name))
		if !name.Valid() {
			v.ps.addKey(p, "unknown environment %q; use sandbox or production", name)
			continue
		}
		if e == nil {
			v.ps.addKey(p, "empty: needs aws and lakiconnect")
			continue
		}
		// A Vault store needs no AWS settings unless they are written.
		if c.Store.Kind != StoreVault || v.c.pos.set(p+".aws") {
			v.aws(p+".aws", e.AWS)
		}
		if c.Store.Kind == StoreVault {
			v.vault(p+".vault", e.Vault)
		} else if e.Vault != nil {
			v.ps.add(p+".vault", "goes only with store.kind: vault")
		}
		v.lakiconnect(p+".lakiconnect", name, e.LakiConnect)
		if eb := e.EventBridge; eb != nil {
			if eb.Bus == "" {
				v.ps.add(p+".eventbridge.bus", "required: the event bus name or ARN")
			}
			if eb.Attempts < 0 || eb.Attempts > 50 {
				v.ps.add(p+".eventbridge.attempts", "%d is not within 0-50", eb.Attempts)
			}
		}
	}
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (v *validator) aws(p string, a AWSConfig) {
	switch {
	case a.Region == "":
		v.ps.add(p+".region", "required, as in eu-west-1")
	case !regionRE.MatchString(a.Region):
		v.ps.add(p+".region", "%q is not an AWS region, as in eu-west-1", a.Region)
	}
	v.url(p+".endpoint", a.Endpoint, false)
	if a.RoleARN != "" && !roleARNRE.MatchString(a.RoleARN) {
		v.ps.add(p+".role_arn", "%q is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)", a.RoleARN)
	}
	if a.ExternalID != "" && a.RoleARN == "" {
		v.ps.add(p+".external_id", "goes only with role_arn")
	}
	if a.ReadRate <= 0 {
		v.ps.add(p+".read_rate", "must be more than 0 requests per second")
	}
	if a.WriteRate <= 0 {
		v.ps.add(p+".write_rate", "must be more than 0 requests per second")
	}
	if a.MaxAttempts < 1 || a.MaxAttempts > 20 {
		v.ps.add(p+".max_attempts", "must be between 1 and 20")
	}
	v.durationAtLeast(p+".timeout", a.Timeout, Duration(time.Second))
}

func (v *validator) lakiconnect(p string, env laki.Environment, l LakiConnectConfig) {
	v.url(p+".base_url", l.BaseURL, true)
	if l.RateLimit <= 0 || l.RateLimit > MaxLakiRateLimit {
		v.ps.add(p+".rate_limit", "must be more than 0 and at most %d requests per second (LakiConnect's limit per key)", MaxLakiRateLimit)
	}
	v.durationAtLeast(p+".timeout", l.Timeout, Duration(time.Second))
	if len(l.MasterMerchants) == 0 {
		v.ps.add(p+".master_merchants", "required: at least one master merchant with its management key")
	}
	ids := map[string]int{}
	for i, m := range l.MasterMerchants {
		mp := indexPath(p+".master_merchants", i)
		switch first, dup := ids[m.ID]; {
		case m.ID == "":
			v.ps.add(mp+".id", "required, as in mm_0123456789abcdef")
		case !laki.IsMasterMerchantID(m.ID):
			v.ps.add(mp+".id", "%q is not a master merchant id (mm_ and 16 letters or digits)", m.ID)
		case dup:
			v.ps.add(mp+".id", "%s is already listed at master_merchants[%d]", m.ID, first)
		default:
			ids[m.ID] = i
		}
		v.secretName(mp+".management_key.secret", m.ManagementKey.Secret)
		if m.ManagementKey.Policy != "" {
			v.policy(mp+".management_key.policy", m.ManagementKey.Policy, inventory.KindManagementKey, env)
		}
		v.owners(mp+".management_key.owners", m.ManagementKey.Owners)
		if w := m.SecurityWebhook; w != nil {
			wp := mp + ".security_webhook"
			v.endpointID(wp+".endpoint_id", w.EndpointID)
			v.secretName(wp+".secret", w.Secret)
			if !strings.HasPrefix(w.Path, "/") {
				v.ps.add(wp+".path", "must start with /")
			}
			if w.Policy != "" {
				v.policy(wp+".policy", w.Policy, inventory.KindWebhookSecret, env)
			}
			v.owners(wp+".owners", w.Owners)
		}
	}
}

func (v *validator) endpointID(path, id string) {
	switch {
	case id == "":
		v.ps.add(path, "required for a webhook secret, as in we_0123456789abcdefghijklmn")
	case !laki.IsEndpointID(id):
		v.ps.add(path, "%q is not a webhook endpoint id (we_ and 24 letters or digits)", id)
	}
}

func (v *validator) store() {
	s := v.c.Store
	switch s.Kind {
	case StoreAWS:
		if s.LocalPath != "" {
			v.ps.add("store.local_path", "goes only with kind: local")
		}
	case StoreLocal:
		if s.LocalPath == "" {
			v.ps.add("store.local_path", "required with kind: local")
		}
	case StoreVault:
		if s.LocalPath != "" {
			v.ps.add("store.local_path", "goes only with kind: local")
		}
	default:
		v.ps.add("store.kind", "%q is not one of aws, local, vault", s.Kind)
	}
}

func (v *validator) secrets() {
	c := v.c
	for i, s := range c.Secrets {
		p := indexPath("secrets", i)
		v.secretName(p+".name", s.Name)
		switch s.Kind {
		case inventory.KindAPIKey, inventory.KindWebhookSecret:
		case "":
			v.ps.add(p+".kind", "required: api_key or webhook_secret")
		case inventory.KindManagementKey:
			v.ps.add(p+".kind", "management keys are declared under environments.<env>.lakiconnect.master_merchants[].management_key")
		default:
			v.ps.add(p+".kind", "%q is not one of api_key, webhook_secret", s.Kind)
		}
		env, envOK := c.Environments[s.Environment]
		switch {
		case s.Environment == "":
			v.ps.add(p+".environment", "required: one of the configured environments (%s)", envList(c.Environments))
		case !envOK || !s.Environment.Valid():
			v.ps.add(p+".environment", "%q is not a configured environment (%s)", s.Environment, envList(c.Environments))
		}
		switch {
		case s.MasterMerchantID == "":
			v.ps.add(p+".master_merchant_id", "required")
		case !laki.IsMasterMerchantID(s.MasterMerchantID):
			v.ps.add(p+".master_merchant_id", "%q is not a master merchant id (mm_ and 16 letters or digits)", s.MasterMerchantID)
		case envOK && env != nil:
			if _, ok := c.MasterMerchant(s.Environment, s.MasterMerchantID); !ok {
				v.ps.add(p+".master_merchant_id", "%s is not listed in environments.%s.lakiconnect.master_merchants", s.MasterMerchantID, s.Environment)
			}
		}
		if s.Kind == inventory.KindWebhookSecret {
			v.endpointID(p+".endpoint_id", s.EndpointID)
		} else if s.EndpointID != "" {
			v.ps.add(p+".endpoint_id", "goes only with kind: webhook_secret")
		}
		v.policy(p+".policy", s.Policy, s.Kind, s.Environment)
		v.owners(p+".owners", s.Owners)
	}
}

func (v *validator) discovery() {
	d := v.c.Discovery
	for _, k := range sortedKeys(d.TagFilters) {
		p := childPath("discovery.tag_filters", k)
		if len(k) > 128 {
			v.ps.addKey(p, "a tag key is at most 128 characters")
		}
		for i, val := range d.TagFilters[k] {
			if val == "" || len(val) > 256 {
				v.ps.add(indexPath(p, i), "a tag value is 1 to 256 characters")
			}
		}
	}
	if d.Enabled {
		v.durationAtLeast("discovery.refresh_interval", d.RefreshInterval, Duration(time.Minute))
	}
}
