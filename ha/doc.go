// Package ha is the lease that lets several `lakirotator serve` replicas
// share one deployment: the holder runs scheduled slots, sweeps and scans;
// every replica takes triggers and security events and carries them out.
//
// The lease is one DynamoDB item written only with conditional writes
// (PutItem/UpdateItem with a ConditionExpression):
//
//   - holder: the replica holding it ("" once released);
//   - token: the fencing token, raised by one on every change of holder and
//     never lowered (an item created anew starts at the creating clock's
//     Unix milliseconds, so a token never repeats even if the item was
//     deleted);
//   - renewal: a fresh random value on every renewal;
//   - ttl_ms: the lease duration; hold_ms: how long after sending a renewal
//     the holder starts work (TTL minus its margin); expires_at: Unix
//     seconds for DynamoDB's TTL, which only tidies an item no replica has
//     renewed for a day.
//
// No replica compares its clock with another's: each counts durations on
// its own (monotonic) clock, so an offset between replicas' clocks, of
// seconds or of hours, changes nothing; only the rate of the clocks
// matters. The arithmetic, with the defaults at TTL = 15 s (Renew = TTL/5
// = 3 s, Poll = TTL/15 = 1 s, Margin = TTL/3 = 5 s): let S be when the
// holder sent its last renewal that succeeded (its clock) and R ≥ S when
// that renewal changed the item.
//
//   - The holder starts no work from S + TTL - Margin = S + 10 s on. It
//     counts from S, before the item changed, so never late.
//   - A contender reads the item every Poll; it first reads the new renewal
//     value at a moment seen with R ≤ seen ≤ R + Poll (plus the read's round
//     trip), and takes the lease only if it reads that same value still at
//     seen + TTL - 2·Poll = seen + 13 s by its own clock.
//   - So no one takes the lease before R + 13 s ≥ S + 13 s: the holder has
//     stopped starting work at least Margin - 2·Poll = 3 s before another
//     can hold it, whatever the offset between their clocks (the lease
//     tests use ±5 s), and even if their clocks' rates differed by more
//     than 10 %.
//   - And a contender that keeps polling takes it by R + Poll + TTL - 2·Poll
//     = R + TTL - Poll = R + 14 s, plus the round trips of a read, a read
//     and a conditional write: within one TTL of the holder's last renewal
//     while those take under Poll (1 s), and so within one TTL of a kill,
//     which comes after that renewal.
//
// New refuses options that break this (2·Poll ≥ Margin, or Renew + Margin
// ≥ TTL, which would leave no renewal inside a holding). The holder
// renews every Renew (3 s) and its holding lasts TTL - Margin (10 s), so
// two renewals in a row may fail without losing the lease. The item also
// carries the holder's holding (hold_ms): a contender configured with a
// shorter wait than a differently configured holder needs still waits a
// Poll past that holding.
//
// Fencing. Every change of holder raises the token, and the holder checks
// it (Fence: a conditional write on holder and token) before it starts a
// scheduled slot, a sweep or a scan; a holder that lost the lease is
// refused there. A write already under way when the holder is paused and
// lands late is harmless for a different reason, the one the engine
// already relies on for two replicas: version ids derive from the cause
// (the slot), so the new holder rotates the same secret to the same version
// id; a rotation re-reads AWSCURRENT right before its put and looks again
// if another promoted meanwhile; a promote that finds its version current
// reports it done by another. A late writer thus repeats a step the new
// holder would take or is turned away by the store's stale-writer checks;
// it never makes a second rotation of a slot.
package ha
