// Package consumer is the half of a rotation that runs in the applications
// that use LakiConnect credentials, so that a rotation costs them nothing:
//
//   - APIKey serves the current API key (AWSCURRENT) from a TTL cache, and
//     on a LakiConnect 401 re-reads AWSCURRENT at once and retries the call
//     once (Transport, an http.RoundTripper that sets Authorization), so an
//     application never holds a replaced key for longer than one request.
//   - Verifier checks X-LakiConnect-Signature against every live signing
//     secret of an endpoint (AWSCURRENT, AWSPENDING during a rotation,
//     AWSPREVIOUS during its grace), then the master merchant, then
//     redeliveries, as LakiConnect's security guidance asks.
//
// Both read the stored value the rotator writes (format_version 1, defined
// in providers/secretstore) and refuse any other version, naming the secret
// and the field and never quoting the value. Secret values are
// internal/secret.Value, which prints as [REDACTED]; call Reveal to use one.
//
// The package depends on the stored-format definitions and the signature
// header parser (providers/lakiconnect/webhooksig) only, never on the daemon;
// a test holds it to that.
//
// # Caching
//
// APIKey is built on AWS's own cache, github.com/aws/aws-secretsmanager-caching-go/v2:
// a DescribeSecret every TTL (jittered between TTL/2 and TTL, on the wall
// clock) and one GetSecretValue per new version; a failed refresh keeps
// serving the value in hand. Its forced refresh (RefreshNow) is not used: it
// sleeps 2.5 to 5 s before reading, and is not synchronized with concurrent
// reads. After a 401 APIKey instead reads AWSCURRENT itself, once for all
// the requests that failed together, and serves that value until the cache
// has caught up.
//
// Verifier does not use that cache, because the cache cannot do what a
// receiver needs: it serves one stage per call from separate reads (so the
// set of live secrets is not one consistent snapshot), it does not expose
// the secret's tags (needed to tell a compromise, whose old secret must not
// be accepted at all), and it cannot re-read promptly when a delivery is
// signed only with secrets it does not hold yet. Verifier keeps one snapshot
// per endpoint secret (one DescribeSecret and a GetSecretValue per version
// not yet held), refreshed every TTL on its injected clock and at once,
// coalesced and at most once per MinRefreshInterval, when no held secret
// matches. A refresh that fails never drops what is held.
//
// # What rotations ask of consumers
//
// A scheduled rotation keeps the old credential working for the policy's
// grace, so the TTL must be well under it (the default 5 minutes is). A
// compromise ends the old API key at once: Transport's 401 retry covers
// that. Subscribe to the rotator's EventBridge events (source lakirotator)
// and call Refresh on them to drop an exposed signing secret before the TTL.
package consumer
