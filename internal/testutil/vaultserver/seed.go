package vaultserver

import (
	"context"
	"fmt"

	"github.com/hashicorp/vault/api"

	"github.com/lakirotator/lakirotator/internal/secret"
)

// DescriptionKey is the custom metadata key the Vault store reads a
// secret's description from.
const DescriptionKey = "lakirotator-description"

// MaxVersions is the max_versions the README asks for on managed secrets:
// Secrets Manager keeps about 100 versions, KV v2 10 unless told otherwise,
// and a rotation writes two.
const MaxVersions = 100

// Create makes a KV v2 secret as a person or Terraform would: metadata with
// max_versions and the tags (and description) as custom metadata, and, when
// initial is not nil, a first version written by hand ({"value": initial}).
func Create(ctx context.Context, c *api.Client, mount, name, description string, tags map[string]string, initial *secret.Value) error {
	custom := map[string]any{}
	for k, v := range tags {
		custom[k] = v
	}
	if description != "" {
		custom[DescriptionKey] = description
	}
	if _, err := c.Logical().WriteWithContext(ctx, mount+"/metadata/"+name, map[string]any{"custom_metadata": custom, "max_versions": MaxVersions}); err != nil {
		return fmt.Errorf("create %s/metadata/%s: %w", mount, name, err)
	}
	if initial == nil {
		return nil
	}
	if _, err := c.KVv2(mount).Put(ctx, name, map[string]any{"value": initial.Reveal()}); err != nil {
		return fmt.Errorf("write %s/data/%s: %w", mount, name, err)
	}
	return nil
}

// ScheduleDeletion soft-deletes the latest version, as `vault kv delete` does.
func ScheduleDeletion(ctx context.Context, c *api.Client, mount, name string) error {
	return c.KVv2(mount).Delete(ctx, name)
}

// MountKVv2 enables a KV v2 secrets engine at mount.
func MountKVv2(c *api.Client, mount string) error {
	return c.Sys().Mount(mount, &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}})
}

// PolicyToken writes the policy under name and returns a token holding only it.
func PolicyToken(ctx context.Context, c *api.Client, name, hcl string) (string, error) {
	if err := c.Sys().PutPolicyWithContext(ctx, name, hcl); err != nil {
		return "", fmt.Errorf("write policy %s: %w", name, err)
	}
	tok, err := c.Auth().Token().CreateWithContext(ctx, &api.TokenCreateRequest{Policies: []string{name}, NoDefaultPolicy: true, TTL: "1h"})
	if err != nil {
		return "", fmt.Errorf("token with policy %s: %w", name, err)
	}
	return tok.Auth.ClientToken, nil
}
