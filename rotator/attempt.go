package rotator

import (
	"context"
	"errors"
	"slices"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

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
		case err == nil && m.c.ID() != res.KeyID:
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
		res.PreviousKeyID = c.ID()
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
	res.KeyID, res.KeyLast4 = fresh.ID(), fresh.Secret.Last4()

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
			res.PreviousKeyID = c.ID()
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
	if old != nil && old.ID() != res.KeyID {
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
	res.KeyID, res.KeyLast4 = mineCred.ID(), mineCred.Secret.Last4()
	prev, ok := info.VersionWithStage(secretstore.StagePrevious)
	if !ok {
		return res, nil
	}
	res.PreviousVersionID = prev.ID
	old, err := e.read(ctx, ms, secretstore.ByID(prev.ID), "read previous")
	if err != nil {
		return res, err
	}
	res.PreviousKeyID = old.ID()
	if old.ID() == res.KeyID {
		return res, nil
	}
	res.OldEndsAt, err = e.endOld(ctx, iss, job, vid, &old, job.Policy.GraceFor(job.Trigger.Kind))
	return res, err
}
