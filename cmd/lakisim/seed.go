package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakisim"
)

// seedFile is the seed format (YAML, or JSON which is YAML too):
//
//	merchants:
//	  - id: mm_0123456789abcdef      # optional: generated when empty
//	    keys:
//	      - environment: sandbox
//	        name: management
//	        scopes: [api_keys:read, api_keys:write]   # optional: every scope
//	    webhook_endpoints:
//	      - environment: sandbox
//	        url: https://127.0.0.1:9443/hooks
//	        enabled_events: ["*"]
type seedFile struct {
	Merchants []seedMerchant `yaml:"merchants"`
}

type seedMerchant struct {
	ID               string         `yaml:"id"`
	Keys             []seedKey      `yaml:"keys"`
	WebhookEndpoints []seedEndpoint `yaml:"webhook_endpoints"`
}

type seedKey struct {
	Environment laki.Environment `yaml:"environment"`
	Name        string           `yaml:"name"`
	Scopes      []laki.Scope     `yaml:"scopes"`
}

type seedEndpoint struct {
	Environment   laki.Environment `yaml:"environment"`
	URL           string           `yaml:"url"`
	EnabledEvents []string         `yaml:"enabled_events"`
}

// credentials is what the binary hands out once: the seeded secrets.
type credentials struct {
	SandboxURL     string             `json:"sandbox_url"`
	ProductionURL  string             `json:"production_url"`
	AdminURL       string             `json:"admin_url"`
	Merchants      []string           `json:"merchants"`
	Keys           []credentialKey    `json:"keys"`
	WebhookSecrets []credentialSecret `json:"webhook_secrets,omitempty"`
}

type credentialKey struct {
	Environment      laki.Environment `json:"environment"`
	MasterMerchantID string           `json:"master_merchant_id"`
	KeyID            string           `json:"key_id"`
	Name             string           `json:"name"`
	Scopes           []laki.Scope     `json:"scopes"`
	Secret           string           `json:"secret"`
}

type credentialSecret struct {
	Environment      laki.Environment `json:"environment"`
	MasterMerchantID string           `json:"master_merchant_id"`
	EndpointID       string           `json:"endpoint_id"`
	URL              string           `json:"url"`
	SecretID         string           `json:"secret_id"`
	Secret           string           `json:"secret"`
}

func loadSeed(path string) (seedFile, error) {
	var sf seedFile
	f, err := os.Open(path)
	if err != nil {
		return sf, fmt.Errorf("seed file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return sf, fmt.Errorf("seed file %s: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&sf); err != nil && !errors.Is(err, io.EOF) {
		return sf, fmt.Errorf("seed file %s: %w", path, err)
	}
	if err := sf.validate(); err != nil {
		return sf, fmt.Errorf("seed file %s: %w", path, err)
	}
	return sf, nil
}

func (sf seedFile) validate() error {
	if len(sf.Merchants) == 0 {
		return errors.New("merchants: at least one merchant is needed")
	}
	for i, m := range sf.Merchants {
		for j, k := range m.Keys {
			at := fmt.Sprintf("merchants[%d].keys[%d]", i, j)
			if !k.Environment.Valid() {
				return fmt.Errorf("%s.environment: %q is not sandbox or production", at, k.Environment)
			}
			if k.Name == "" {
				return fmt.Errorf("%s.name: required", at)
			}
			for n, sc := range k.Scopes {
				if !sc.Valid() {
					return fmt.Errorf("%s.scopes[%d]: unknown scope %q", at, n, sc)
				}
			}
		}
		for j, ep := range m.WebhookEndpoints {
			at := fmt.Sprintf("merchants[%d].webhook_endpoints[%d]", i, j)
			if !ep.Environment.Valid() {
				return fmt.Errorf("%s.environment: %q is not sandbox or production", at, ep.Environment)
			}
			if ep.URL == "" {
				return fmt.Errorf("%s.url: required", at)
			}
		}
	}
	return nil
}

// apply seeds the simulator and returns the secrets it made.
func (sf seedFile) apply(sim *lakisim.Simulator, creds *credentials) error {
	for i, m := range sf.Merchants {
		id := sim.AddMasterMerchant(m.ID)
		creds.Merchants = append(creds.Merchants, id)
		for j, k := range m.Keys {
			scopes := k.Scopes
			if len(scopes) == 0 {
				scopes = laki.AllScopes
			}
			key, err := sim.CreateKey(k.Environment, id, k.Name, scopes)
			if err != nil {
				return fmt.Errorf("merchants[%d].keys[%d]: %w", i, j, err)
			}
			creds.Keys = append(creds.Keys, credentialKey{
				Environment: k.Environment, MasterMerchantID: id, KeyID: key.ID, Name: key.Name, Scopes: key.Scopes, Secret: key.Secret.Reveal(),
			})
		}
		for j, ep := range m.WebhookEndpoints {
			events := ep.EnabledEvents
			if len(events) == 0 {
				events = []string{"*"}
			}
			e, ws, err := sim.AddWebhookEndpoint(ep.Environment, id, ep.URL, events)
			if err != nil {
				return fmt.Errorf("merchants[%d].webhook_endpoints[%d]: %w", i, j, err)
			}
			creds.WebhookSecrets = append(creds.WebhookSecrets, credentialSecret{
				Environment: ep.Environment, MasterMerchantID: id, EndpointID: e.ID, URL: e.URL, SecretID: ws.ID, Secret: ws.Secret.Reveal(),
			})
		}
	}
	return nil
}
