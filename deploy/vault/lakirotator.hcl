# The Vault policy lakirotator's Vault store needs: exactly the paths and
# capabilities providers/vaultstore uses (providers/vaultstore/policy_test.go
# proves each one is needed and that together they are enough).
#
# It assumes a KV version 2 secrets engine mounted at lakirotator/ that holds
# only the secrets lakirotator manages:
#
#   vault secrets enable -path=lakirotator kv-v2
#   vault policy write lakirotator deploy/vault/lakirotator.hcl
#
# With another mount, replace "lakirotator/" below by it. To confine the
# rotator to some folders of a shared mount, replace "*" by "folder/*" and
# list the folders under the store's paths in the config.
# There is no "create" (the rotator never creates a secret: people or
# Terraform do), no "delete" and no "sudo".

# Read versions (values and the stage record), and write new versions with
# check-and-set: a new credential version or a stage move.
path "lakirotator/data/*" {
  capabilities = ["read", "update"]
}

# Read a secret's metadata (versions, custom metadata), set tags and the
# stage view in custom metadata (a JSON merge patch), and list folders for
# discovery.
path "lakirotator/metadata/*" {
  capabilities = ["read", "patch", "list"]
}
