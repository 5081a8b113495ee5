// attempt.go is one pass of the lifecycle together with the checks that
// guard its writes (look before the put, promote that finds the work done,
// the end of a credential that lost a race): they only read right next to
// the writes they guard, hence one file over 400 lines.

package rotator

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// maxVersionAttempts bounds how many versions one cause may write: a
// version whose credential failed its test (a replayed create that hands
// back a key ended since, say) is abandoned and the cause moves on to its
// next version, at most this many times.
const maxVersionAttempts = 3

// maxCreateAttempts bounds the Idempotency-Key attempts of one version's
// create: a replayed dead end (409, 422) moves to the next key.
const maxCreateAttempts = 4

// TagCreateAttempt records, off the happy path only, that a version's create
// moved past a dead-end idempotency key ("<version id> <n>"), so that a
// restart or a replica starts at that attempt instead of replaying the dead
// end for LakiConnect's 24 hours.
const TagCreateAttempt = "lakirotator:create-attempt"

// versionFor is the version id of the cause's current version attempt: the
// first, unless earlier ones were abandoned (written, never promoted, then
// named by the failure tags or followed by a later attempt).
func versionFor(info secretstore.Secret, ref, causeID string) string {
	vid := versionAttempt(ref, causeID, 1)
	for n := 2; n <= maxVersionAttempts; n++ {
		v, ok := info.Version(vid)
		if !ok || v.Has(secretstore.StageCurrent) || v.Has(secretstore.StagePending) {
			return vid
		}
		next := versionAttempt(ref, causeID, n)
		if _, later := info.Version(next); !later && info.Tags[TagFailingVersion] != vid {
			return vid
		}
		vid = next
	}
	return vid
}

// createAttemptOf is the first create attempt to try for the version.
func createAttemptOf(info secretstore.Secret, vid string) int {
	f := strings.Fields(info.Tags[TagCreateAttempt])
	if len(f) == 2 && f[0] == vid {
		if n, err := strconv.Atoi(f[1]); err == nil && n >= 1 && n <= maxCreateAttempts {
			return n
		}
	}
	return 1
}

// errStale says that the caller's view of the secret (a listing, or a
// Describe taken before a long call) no longer holds: another replica or
// another rotation moved the labels. The attempt describes again and decides
// anew before it writes anything.
var errStale = errors.New("the secret changed since it was listed")

// errNextVersion says that the version's credential failed its test and was
// abandoned; the cause goes on with its next version.
var errNextVersion = errors.New("the version was abandoned; trying the next one")

// made is a credential an attempt created at LakiConnect for a version.
type made struct {
	vid       string
	c         secretstore.Credential
	stored    bool         // its AWSPENDING version was written
	created   events.Event // the "created" event, sent once
	announced bool
	// replayed: LakiConnect answered the create as a replay, so an earlier
	// request made the credential (another replica's, or this process's
	// before a crash); settled: the wait that follows was done.
	replayed, settled bool
}

// attempt is one pass over the lifecycle from wherever the store says the
// rotation stands. Every step is idempotent, so a pass after a crash rolls
// forward. Before any write it checks that the write is still needed: a
// stale writer never re-puts a version that may be AWSCURRENT (a no-op on
// AWS, but moto strips AWSCURRENT) and never moves a label another replica
// has moved already. A credential this attempt created that ends up unused
// (its rotation lost a race to another one) is ended at once.
func (e *Engine) attempt(ctx context.Context, job Job, info secretstore.Secret) (Result, error) {
	var m *made
	origin := job.Trigger
	if c := job.carry; c != nil {
		// Run again after a wait: joined already, with what it made.
		m, job.Trigger = c.made, c.joined
	} else if job.Join != nil && !job.resumeOnly {
		d, err := e.store.Describe(ctx, job.Secret.Name)
		if err != nil {
			return Result{Secret: job.Secret.Name}, stepErr(job.Secret.Name, "describe", err)
		}
		info = d
		if j, ok := job.Join(d); ok && j.Trigger.validate() == nil {
			if info, err = e.join(ctx, &job, j, info); err != nil {
				return Result{Secret: job.Secret.Name}, err
			}
		}
	}
	for pass := 0; ; pass++ {
		res, err := e.pass(ctx, job, info, &m)
		if rq, ok := err.(*requeue); ok {
			rq.job = job
			rq.job.Trigger, rq.job.carry = origin, &carried{made: m, joined: job.Trigger}
			return res, rq
		}
		var later *joinLater
		if errors.As(err, &later) && pass < 3+maxVersionAttempts {
			// Another ask is the one the store names now: this job's own
			// credential, made but never stored, ends here, and the job
			// follows that ask's rotation.
			if m != nil && !m.stored {
				e.discard(ctx, job, m.vid, m.c)
			}
			m = nil
			if info, err = e.join(ctx, &job, later.joined, later.info); err != nil {
				return res, err
			}
			continue
		}
		if (errors.Is(err, errStale) || errors.Is(err, errNextVersion)) && pass < 3+maxVersionAttempts {
			d, derr := e.store.Describe(ctx, job.Secret.Name)
			if derr != nil {
				return res, stepErr(job.Secret.Name, "describe", derr)
			}
			info = d
			continue
		}
		if errors.Is(err, errStale) || errors.Is(err, errNextVersion) || later != nil {
			err = permanent(job.Secret.Name, "check before write", "%v", err)
		}
		if job.Trigger.ID != origin.ID {
			res.JoinedTrigger = job.Trigger
		}
		_, written := info.Version(m0(m).vid)
		switch {
		case m == nil || written:
			// Nothing made, or its version was written (by this rotation or
			// a replica): a stored credential is never ended here.
		case err == nil && credID(m.c) != res.KeyID:
			// Lost a race: another version is the one rotated.
			e.discard(ctx, job, m.vid, m.c)
		case err != nil && !m.stored && !retryable(err) && !errors.Is(err, ErrAborted):
			// Refused after the create (the stored credential is for
			// another environment, say): no retry will adopt it.
			e.discard(ctx, job, m.vid, m.c)
		}
		return res, err
	}
}

func m0(m *made) made {
	if m == nil {
		return made{}
	}
	return *m
}

func (e *Engine) pass(ctx context.Context, job Job, info secretstore.Secret, m **made) (Result, error) {
	ms := job.Secret
	name := ms.Name
	ref := refOf(ms, &info)
	vid := versionFor(info, ref, job.Trigger.ID)
	res := Result{Secret: name, VersionID: vid, Outcome: Rotated}
	iss, err := e.issuer(ctx, ms)
	if err != nil {
		return res, stepErr(name, "issuer", err)
	}
	cur, hasCur := info.VersionWithStage(secretstore.StageCurrent)
	pend, hasPend := info.VersionWithStage(secretstore.StagePending)

	if mine, ok := info.Version(vid); ok && !(mine.Has(secretstore.StagePending) && !mine.Has(secretstore.StageCurrent)) {
		if !mine.Has(secretstore.StageCurrent) {
			if info.Tags[TagFailingVersion] == vid {
				return res, permanent(name, "resume", "version %s of this cause failed its test and was abandoned, %d versions tried; a new rotation needs a new cause id", vid, maxVersionAttempts)
			}
			res.Outcome = Superseded
			return res, nil
		}
		// Promoted before (a crash after promote, or a replica): make sure
		// the old credential's end is scheduled, which is idempotent.
		return e.finishDone(ctx, iss, job, info, vid, res)
	}

	var old *secretstore.Credential
	if hasCur {
		res.PreviousVersionID = cur.ID
	}
	// takeOld checks a fresh read of AWSCURRENT against the listing and
	// keeps it as the old credential.
	takeOld := func(v secretstore.Version, strict bool) error {
		if v.ID != cur.ID || (strict && !slices.Contains(v.Stages, secretstore.StagePending)) {
			return errStale
		}
		c, err := e.decode(ms, v, "read current")
		if err != nil {
			return err
		}
		old = &c
		res.PreviousKeyID = credID(c)
		return nil
	}
	// readCurrent is one Secrets Manager read (quota 10,000/s) rather than
	// a LakiConnect lookup (100/s per management key, the scarcer one).
	readCurrent := func(strict bool) error {
		if !hasCur {
			return nil
		}
		v, err := e.store.Get(ctx, name, secretstore.ByStage(secretstore.StageCurrent))
		if err != nil {
			return stepErr(name, "read current", err)
		}
		return takeOld(v, strict)
	}
	oldOf := func() (*secretstore.Credential, error) {
		if old == nil {
			if err := readCurrent(false); err != nil {
				return nil, err
			}
		}
		return old, nil
	}

	var fresh secretstore.Credential
	if hasPend && !pend.Has(secretstore.StageCurrent) {
		// A rotation in flight: finish it rather than start another.
		if pend.ID != vid {
			res.Outcome = Resumed
		}
		res.VersionID = pend.ID
		vid = pend.ID
		fresh, err = e.read(ctx, ms, secretstore.ByID(pend.ID), "read pending")
		if err != nil {
			return res, err
		}
		if err := readCurrent(false); err != nil {
			return res, err
		}
	} else {
		if job.resumeOnly {
			res.Outcome = NothingToResume
			return res, nil
		}
		if e.revokeFirst(job) {
			if _, err := oldOf(); err != nil {
				return res, err
			}
			if old != nil {
				if err := e.revokeOldFirst(ctx, iss, job, vid, old); err != nil {
					return res, err
				}
				if err := e.hook(name, AfterRevokeFirst); err != nil {
					return res, err
				}
			}
		}
		if *m != nil && (*m).vid == vid {
			fresh = (*m).c // created by an earlier pass of this attempt
		} else {
			var ev events.Event
			var replayed bool
			fresh, ev, replayed, err = e.create(ctx, iss, job, vid, createAttemptOf(info, vid), oldOf)
			if err != nil {
				return res, err
			}
			*m = &made{vid: vid, c: fresh, created: ev, replayed: replayed}
		}
		if err := e.hook(name, AfterCreate); err != nil {
			return res, err
		}
		if mm := *m; mm.replayed && !mm.settled {
			// Not this process's create: another writer may own the version.
			mm.settled = true
			if err := e.settle(ctx, job, vid); err != nil {
				return res, err
			}
		}
		// The listing may be stale (another replica, another trigger): look
		// right before writing. The read of the old credential, made now,
		// names the version that is AWSCURRENT and, once a secret has been
		// rotated, whether another rotation is in flight (AWSPENDING off the
		// current version).
		// (A revoke-first compromise read it before its revoke, moments
		// ago: that read stands, keeping the call budget.)
		if old == nil {
			if err := readCurrent(cur.Has(secretstore.StagePending)); err != nil {
				return res, err
			}
		}
		if mm := *m; !mm.announced {
			mm.created.PreviousKeyID = res.PreviousKeyID
			e.emit(ctx, mm.created, events.StepCreate, events.OutcomeStarted, nil)
			mm.announced = true
		}
		if err := e.checkBeforePut(ctx, job, vid, hasCur); err != nil {
			return res, err
		}
		if err := e.put(ctx, job, vid, fresh); err != nil {
			return res, err
		}
		(*m).stored = true
		if err := e.hook(name, AfterPut); err != nil {
			return res, err
		}
	}
	res.KeyID, res.KeyLast4 = credID(fresh), fresh.Secret.Last4()

	if err := e.test(ctx, iss, job, vid, fresh); err != nil {
		if errors.Is(err, ErrCredentialFailedTest) {
			if e.abandon(ctx, iss, job, vid, cur.ID, fresh) && vid == versionFor(info, ref, job.Trigger.ID) && hasNextVersion(ref, job.Trigger.ID, vid) {
				// The cause moves on to its next version (a replayed create
				// handed back a key ended since, say).
				return res, errNextVersion
			}
		}
		return res, err
	}
	if err := e.hook(name, AfterTest); err != nil {
		return res, err
	}
	from, byOther, err := e.promote(ctx, job, vid, cur.ID, res.PreviousKeyID, res.KeyID)
	if err != nil {
		return res, err
	}
	if byOther {
		// Another replica promoted this very version first; it ends the old
		// credential too, and confirming that end here is idempotent.
		d, derr := e.store.Describe(ctx, name)
		if derr != nil {
			return res, stepErr(name, "describe", derr)
		}
		return e.finishDone(ctx, iss, job, d, vid, res)
	}
	if from != cur.ID {
		// Promoted from a version that became current after the listing: that
		// one is the credential to end now (two rotations in sequence).
		res.PreviousVersionID, res.PreviousKeyID, old = from, "", nil
		if from != "" {
			c, err := e.read(ctx, ms, secretstore.ByID(from), "read previous")
			if err != nil {
				return res, err
			}
			old = &c
			res.PreviousKeyID = credID(c)
		}
	}
	if err := e.hook(name, AfterPromote); err != nil {
		return res, err
	}
	if ms.Kind == inventory.KindManagementKey {
		// The old management key may be ended below: from here on, call
		// with the new one.
		if inv, ok := e.cfg.Issuers.(KeyInvalidator); ok {
			inv.InvalidateManagementKey(ms.Environment, ms.MasterMerchantID)
		}
		if iss, err = e.issuer(ctx, ms); err != nil {
			return res, stepErr(name, "issuer", err)
		}
	}
	if old != nil && credID(*old) != res.KeyID {
		res.OldEndsAt, err = e.endOld(ctx, iss, job, vid, old, job.Policy.GraceFor(job.Trigger.Kind))
		if err != nil {
			return res, err
		}
		if err := e.hook(name, AfterEndOld); err != nil {
			return res, err
		}
	}
	return res, nil
}

// Following a rotation another replica writes: how often to look, how many
// times, before taking over (the other replica may have died).
const (
	followEvery = 500 * time.Millisecond
	followPolls = 40
)

// follow waits while another replica writes the cause's rotation: two
// writers of one version race (a late put of a version the other already
// promoted strips AWSCURRENT on moto), one writer does not. It returns the
// listing once the version is current, or after the bound: then this
// replica writes (idempotently) what is left.
func (e *Engine) follow(ctx context.Context, job Job, info secretstore.Secret) (secretstore.Secret, error) {
	vid := VersionOf(job.Secret, info, job.Trigger.ID)
	for range followPolls {
		if v, ok := info.Version(vid); ok && v.Has(secretstore.StageCurrent) {
			return info, nil
		}
		select {
		case <-ctx.Done():
			return info, stepErr(job.Secret.Name, "follow", ctx.Err())
		case <-stopOf(ctx):
			return info, stepErr(job.Secret.Name, "follow", ErrClosed)
		case <-e.clk.After(followEvery):
		}
		d, err := e.store.Describe(ctx, job.Secret.Name)
		if err != nil {
			return info, stepErr(job.Secret.Name, "describe", err)
		}
		info = d
	}
	e.log.Warn("the replica writing this rotation did not finish it; taking over", "secret", job.Secret.Name, "cause", job.Trigger.ID)
	return info, nil
}

// settle is what a rotation whose create was replayed does before its put.
// LakiConnect's idempotency elects one owner per create: only the first
// request gets the first answer, every later one a replay. The owner puts
// at once. A replica that got the replay must not: its put could still be on
// the wire when the owner promotes the version, and a put of an existing
// version strips AWSCURRENT on moto (a no-op on AWS). No check before the
// put closes that window, so the replayed one waits a settle time longer than
// one put can take, then looks: a version that exists (pending or current)
// is the owner's, and the pass resumes it without any put (errStale: the
// attempt describes again); a version still absent has no live owner (it
// crashed before its put, or it was this process), and this one adopts the
// credential with the put.
// In the worker pool the job goes back to the queue for the wait (a
// worker is not held); its next run starts with a fresh Describe, which is
// the look that follows the wait.
func (e *Engine) settle(ctx context.Context, job Job, vid string) error {
	name := job.Secret.Name
	e.log.Info("the create was a replay; waiting for its owner's put before writing", "secret", name, "version", vid, "wait", e.cfg.ReplaySettle)
	if inPool(ctx) {
		return &requeue{after: e.cfg.ReplaySettle}
	}
	select {
	case <-ctx.Done():
		return stepErr(name, "settle", ctx.Err())
	case <-stopOf(ctx):
		return stepErr(name, "settle", ErrClosed)
	case <-e.clk.After(e.cfg.ReplaySettle):
	}
	d, err := e.store.Describe(ctx, name)
	if err != nil {
		return stepErr(name, "describe", err)
	}
	if _, ok := d.Version(vid); ok {
		return errStale
	}
	return nil
}

// hasNextVersion reports whether the cause has a version attempt after vid.
func hasNextVersion(ref, causeID, vid string) bool {
	for n := 1; n < maxVersionAttempts; n++ {
		if versionAttempt(ref, causeID, n) == vid {
			return true
		}
	}
	return false
}

// versionAttempt is the version id of the cause's n-th version attempt.
func versionAttempt(ref, causeID string, n int) string {
	if n <= 1 {
		return VersionID(ref, causeID)
	}
	return VersionID(ref, causeID+"#attempt-"+strconv.Itoa(n))
}

// finishDone completes a rotation whose version is already AWSCURRENT:
// it confirms the old credential's end and reports AlreadyDone (the
// rotation is announced once, by whoever promoted it).
func (e *Engine) finishDone(ctx context.Context, iss Issuer, job Job, info secretstore.Secret, vid string, res Result) (Result, error) {
	ms := job.Secret
	res.Outcome, res.VersionID = AlreadyDone, vid
	mineCred, err := e.read(ctx, ms, secretstore.ByID(vid), "read current")
	if err != nil {
		return res, err
	}
	res.KeyID, res.KeyLast4 = credID(mineCred), mineCred.Secret.Last4()
	prev, ok := info.VersionWithStage(secretstore.StagePrevious)
	if !ok {
		return res, nil
	}
	res.PreviousVersionID = prev.ID
	old, err := e.read(ctx, ms, secretstore.ByID(prev.ID), "read previous")
	if err != nil {
		return res, err
	}
	res.PreviousKeyID = credID(old)
	if credID(old) == res.KeyID {
		return res, nil
	}
	res.OldEndsAt, err = e.endOld(ctx, iss, job, vid, &old, job.Policy.GraceFor(job.Trigger.Kind))
	return res, err
}

// promote moves AWSCURRENT to vid. If the move fails it looks at what
// stands: vid already current (another replica promoted it: byOther), or
// another version became current since the listing while vid still holds
// AWSPENDING (vid is then the newer rotation: it is promoted from that
// version, whose id from returns). It never moves AWSCURRENT off a version
// that is newer than vid.
func (e *Engine) promote(ctx context.Context, job Job, vid, fromID, oldKey, newKey string) (from string, byOther bool, err error) {
	name := job.Secret.Name
	ev := e.baseEvent(job)
	ev.VersionID, ev.PreviousVersion, ev.KeyID, ev.PreviousKeyID = vid, fromID, newKey, oldKey
	start := e.clk.Now()
	from = fromID
	if fromID == vid {
		// Never move AWSCURRENT onto the version that holds it: AWS does
		// not document that case, and moto then strips AWSPREVIOUS from
		// the old version (see MOTO.md). It is done already.
		return from, true, nil
	}
	err = e.store.MoveStage(ctx, name, secretstore.StageCurrent, vid, fromID)
	if err != nil {
		d, derr := e.store.Describe(ctx, name)
		if derr == nil {
			mine, ok := d.Version(vid)
			holder, held := d.VersionWithStage(secretstore.StageCurrent)
			switch {
			case ok && mine.Has(secretstore.StageCurrent):
				return from, true, nil
			case ok && mine.Has(secretstore.StagePending) && (!held || holder.ID != fromID):
				from = ""
				if held {
					from = holder.ID
				}
				err = e.store.MoveStage(ctx, name, secretstore.StageCurrent, vid, from)
			}
		}
	}
	ev.Duration = e.clk.Now().Sub(start)
	ev.PreviousVersion = from
	if err != nil {
		err = stepErr(name, "promote", err)
		e.emit(ctx, ev, events.StepPromote, events.OutcomeFailed, err)
		return from, false, err
	}
	e.emit(ctx, ev, events.StepPromote, events.OutcomeSucceeded, nil)
	return from, false, nil
}

// discard ends a credential this rotation created but did not store,
// because its rotation lost a race (another version became the one in
// flight or current). Nobody ever read it.
func (e *Engine) discard(ctx context.Context, job Job, vid string, c secretstore.Credential) {
	ms := job.Secret
	iss, err := e.issuer(ctx, ms)
	if err == nil {
		if c.Type == secretstore.TypeWebhookSecret {
			_, err = iss.ExpireWebhookSecret(ctx, IdempotencyKey(ms.Name, vid, "discard-"+c.SecretID), ms.EndpointID, c.SecretID, nil)
		} else {
			_, err = iss.RevokeAPIKey(ctx, IdempotencyKey(ms.Name, vid, "discard-"+c.KeyID), c.KeyID)
		}
		if isNotFound(err) {
			err = nil
		}
		if errors.Is(err, laki.ErrKeyRevoked) {
			err = nil
		}
	}
	ev := e.baseEvent(job)
	ev.VersionID, ev.KeyID, ev.KeyLast4 = vid, credID(c), c.Secret.Last4()
	ev.Details = map[string]string{"action": "end_unused_credential"}
	if err != nil {
		// The sweep ends it later: it carries the rotator's metadata.
		e.emit(ctx, ev, events.StepCreate, events.OutcomeWarning, stepErr(ms.Name, "end unused credential", err))
		return
	}
	e.emit(ctx, ev, events.StepCreate, events.OutcomeSkipped, nil)
}

// decode checks a stored version read by the caller (see read).
func (e *Engine) decode(ms inventory.ManagedSecret, v secretstore.Version, step string) (secretstore.Credential, error) {
	c, err := secretstore.DecodeCredential(ms.Name, v.Value)
	if err != nil {
		return secretstore.Credential{}, stepErr(ms.Name, step, err)
	}
	if err := matches(ms, c); err != nil {
		return secretstore.Credential{}, permanent(ms.Name, step, "version %s: %v", v.ID, err)
	}
	return c, nil
}

// VersionOf is the version id a rotation of the secret under the cause
// writes, given the secret's listing (after abandoned version attempts, the
// current attempt's).
func VersionOf(ms inventory.ManagedSecret, info secretstore.Secret, causeID string) string {
	return versionFor(info, refOf(ms, &info), causeID)
}

// TriggerSettled reports whether the rotation of the trigger (by its id) has
// been written and is no longer in flight: its version is (or was) current, or
// was left behind. A trigger that is not settled has nothing stored yet, or
// its version is AWSPENDING in flight.
func TriggerSettled(ms inventory.ManagedSecret, info secretstore.Secret, causeID string) bool {
	v, ok := info.Version(VersionOf(ms, info, causeID))
	return ok && !(v.Has(secretstore.StagePending) && !v.Has(secretstore.StageCurrent))
}
