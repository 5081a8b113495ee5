// Package vaultstore is a secretstore.Store on a HashiCorp Vault (or
// OpenBao) KV version 2 secrets engine, through the official client
// (github.com/hashicorp/vault/api). It passes the same conformance suite
// (providers/secretstore/storetest) as the Secrets Manager and local stores.
//
// # How the engine's model maps onto KV v2
//
// A managed secret is one KV v2 secret: its name is the path under the
// mount ("lakiconnect/prod/orders-api" is <mount>/data/lakiconnect/prod/orders-api).
// A credential version is one KV version whose data holds the value under
// "value" and the engine's version id under "version_id". Tags are the
// secret's custom metadata. The stages (AWSCURRENT, AWSPENDING,
// AWSPREVIOUS) are a small stage record: which KV version holds each
// stage, and which version id each credential version has.
//
// # Where KV v2 differs from Secrets Manager, and how each gap is closed
//
//   - No staging labels. KV v2 knows only "the latest version"; a rotation
//     needs a current version that is not the latest (the pending one is
//     written before it is promoted). Closed by the stage record.
//
//   - check-and-set works on data versions only. The cas option refuses a
//     data write unless the secret's latest version is the one named; the
//     metadata endpoint (custom metadata included) has no check-and-set at
//     all, so two replicas moving stages in custom metadata would both
//     succeed and the last write would silently win. Closed by keeping the
//     authoritative stage record in the data of the latest KV version and
//     writing every change (a put, a stage move) as a new data version with
//     cas = the version it was computed from. A writer that lost a race
//     gets the check-and-set refusal, reads again and re-checks, exactly as
//     UpdateSecretVersionStage re-checks RemoveFromVersionId on AWS. A stage
//     move therefore adds a KV version holding only the record (no value);
//     Describe hides those. The record is then copied into custom metadata
//     (lakirotator-current, lakirotator-pending, lakirotator-previous as KV
//     version numbers, and lakirotator-record, the KV version the copy was
//     taken from) so that people and consumers can find the current
//     version with `vault kv metadata get`. The copy is only a view: when
//     lakirotator-record is not the secret's current_version the view is
//     behind (a crash between the data write and the copy, or two copies
//     landing out of order) and readers must use the record; the store
//     never reads the view and the next write refreshes it.
//
//   - No client request token. Closed by writing the version id into the
//     version's data and looking it up in the record before a put: the same
//     id with the same value is a no-op, with another value ErrTokenReused.
//     Two replicas putting the same id both compute cas from the same
//     latest version; one wins and the other, re-reading, finds its id.
//
//   - Versions disappear. KV v2 keeps max_versions versions (10 by
//     default) and people can delete (recoverably) or destroy versions.
//     The record drops versions Vault no longer has. Reading a version that
//     was deleted or destroyed is ErrNotFound with an error that names the
//     path and the KV version and says whether `vault kv undelete` can
//     bring it back. A rotation writes two versions (the put and the
//     promotion), so the defaults keep AWSPREVIOUS for several rotations.
//
//   - No scheduled deletion. `vault kv delete` soft-deletes the latest
//     version, which is where the record lives; the store treats a secret
//     whose latest version is soft-deleted as scheduled for deletion
//     (ErrScheduledForDeletion, not listed, DeletedAt set) until it is
//     undeleted. A destroyed latest version loses the record; that is a
//     clear ErrMalformedValue naming the path, never a guess.
//
//   - No tag-filtered listing. Discovery LISTs the metadata under the
//     configured paths (recursively), reads each secret's metadata and
//     filters on custom metadata exactly as the tag filters say.
//
//   - No ARN. The store's ARN is "vault:" + namespace + mount + "/" + path,
//     stable across replicas and Vault nodes, so version ids derived from
//     it agree.
//
//   - Secrets written by hand. A version without a record (for example the
//     first `vault kv put secret/x value=...` of an onboarded secret) is
//     adopted as Secrets Manager would treat a PutSecretValue without
//     stages: it becomes AWSCURRENT with the version id "kv-<n>", and the
//     version that was current becomes AWSPREVIOUS.
//
// # Calls
//
// Describe reads the metadata and the latest version (2 reads); Get adds
// the version asked for (3). PutPending and MoveStage read as Describe
// does, write one version with cas, patch the custom metadata view and read
// the metadata once more to see that no newer view was overwritten (5
// calls); a lost race repeats the read and the write. Tag is one patch.
// List is one LIST per folder and, per secret, one metadata read, plus one
// data read for each that passes the filters. A fresh rotation costs the
// engine about 10 Vault calls; Vault has no per-account write quota like
// Secrets Manager's, and the limit that matters is the server's own rate
// limit quota, which the client's retries ride out.
//
// # Setting up
//
// Give the managed secrets (or the mount) max_versions of 100, as many as
// Secrets Manager keeps: a rotation writes two versions. The store never
// creates a secret (people or Terraform do, with the discovery tags as
// custom metadata), so the policy has no "create".
//
// Every error is a *secretstore.Error naming the secret and the Vault path;
// a 403 says which capability on which policy path is missing (the policy
// the store needs is deploy/vault/lakirotator.hcl).
package vaultstore
