// Package rotator is the lifecycle engine: it rotates one managed secret
// through create, test, promote and retire, AWS-rotation-label compatible,
// crash-safe and idempotent, and runs many rotations on a bounded, prioritised
// worker pool.
//
// State lives only in the store (versions, stages, tags) and at LakiConnect.
// The version id of a rotation is derived from the secret and the cause id
// (VersionID), and every LakiConnect write carries an idempotency key derived
// from that version id, so a retry, a restart or a second replica converges
// on one new credential. An AWSPENDING version that is not AWSCURRENT is a
// rotation in flight: any rotation asked for while it exists resumes it
// (with the grace of the new cause: a compromise arriving while a scheduled
// rotation is in flight finishes that one at once with zero grace, which
// ends the exposed key as soon as the in-flight credential is current).
//
// Secrets Manager call budget of one rotation, when the caller passes the
// secret's listing or Describe data (Job.Known):
//
//	fresh rotation: PutSecretValue(AWSPENDING), UpdateSecretVersionStage(AWSCURRENT),
//	                plus GetSecretValue(AWSCURRENT) only when LakiConnect cannot
//	                name the old credential (see below)
//	resumed:        GetSecretValue(pending version), UpdateSecretVersionStage,
//	                plus GetSecretValue(AWSCURRENT) as above
//
// that is at most 3 calls and exactly 2 writes from the engine. The old
// credential's id is needed only to end it; LakiConnect gives it without a
// store read when it is unambiguous: the one live key whose metadata names
// this secret and the AWSCURRENT version id (every key the rotator makes
// carries them), or an endpoint's only live signing secret. A credential made
// by hand (the first rotation of a secret) is read from AWSCURRENT. The fresh
// path proves the credential it holds in memory (the one it just wrote)
// instead of reading AWSPENDING back; only the resume path, which has nothing
// in memory, reads it. AWSPENDING stays on the new current version, as AWS's
// own rotation template leaves it, until the next rotation's PutSecretValue
// moves it. Extra calls happen only off the happy path: a Describe when
// Job.Known is nil or after a failed attempt, a TagResource to record a
// failure or to clear recorded failures. (A store whose PutPending reads the
// version first, as the Secrets Manager store does against moto's missing
// token check, adds its own read to these.)
package rotator
