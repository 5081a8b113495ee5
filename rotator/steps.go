package rotator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// create asks LakiConnect for the new credential. Its idempotency key and
// body derive from the version id, the cause and the attempt only, so a
// retry after a crash gets the same credential back. An answer that cannot
// lead anywhere when replayed (409, 422: LakiConnect replays the first
// answer of a key for 24 hours, errors included) moves the create to its next
// attempt's key; the move is kept in a tag (off the happy path) so that a
// restart or a replica starts there too.
// On success it returns the "created" event unsent: the caller sends it
// once it knows the old credential (read right before the put).
func (e *Engine) create(ctx context.Context, iss Issuer, job Job, vid string, attempt int, oldOf func() (*secretstore.Credential, error)) (c secretstore.Credential, ev events.Event, replayed bool, err error) {
	ms := job.Secret
	ev = e.baseEvent(job)
	ev.VersionID = vid
	start := e.clk.Now()
	for n := attempt; n <= maxCreateAttempts; n++ {
		idem := IdempotencyKey(ms.Name, vid, "create-attempt-"+strconv.Itoa(n))
		if ms.Kind == inventory.KindWebhookSecret {
			c, replayed, err = e.createWebhookSecret(ctx, iss, job, vid, idem, oldOf)
		} else {
			c, replayed, err = e.createAPIKey(ctx, iss, job, vid, idem)
		}
		deadEnd := errors.Is(err, laki.ErrConflict) || errors.Is(err, laki.ErrIdempotencyKeyReused)
		if !deadEnd || n == maxCreateAttempts {
			break
		}
		e.log.Warn("create answered a dead end; moving to the next attempt", "secret", ms.Name, "version", vid, "attempt", n+1, "error", err)
		if terr := e.store.Tag(ctx, ms.Name, map[string]string{TagCreateAttempt: vid + " " + strconv.Itoa(n+1)}); terr != nil {
			e.log.Warn("recording the create attempt in tags failed", "secret", ms.Name, "error", terr)
		}
	}
	ev.Duration = e.clk.Now().Sub(start)
	ev.Details = map[string]string{"action": "create_credential"}
	if err != nil {
		err = stepErr(ms.Name, "create", err)
		e.emit(ctx, ev, events.StepCreate, events.OutcomeFailed, err)
		return c, ev, false, err
	}
	ev.KeyID = c.ID()
	ev.KeyLast4 = c.Secret.Last4()
	return c, ev, replayed, nil
}

// metaName is the secret's name as metadata (at most 500 characters).
func metaName(name string) string {
	if len(name) <= 500 {
		return name
	}
	h := sha256.Sum256([]byte(name))
	return "sha256:" + hex.EncodeToString(h[:])
}

func (e *Engine) createAPIKey(ctx context.Context, iss Issuer, job Job, vid, idem string) (secretstore.Credential, bool, error) {
	ms := job.Secret
	displayName := "lakirotator " + vid[:8] + " " + ms.Name
	if len(displayName) > 100 {
		displayName = displayName[:100]
	}
	req := laki.CreateAPIKeyRequest{
		Name:   displayName,
		Scopes: sortedScopes(job.Policy.Scopes),
		Metadata: map[string]string{
			MetaCreatedBy: MetaCreatedByValue,
			MetaSecret:    metaName(ms.Name),
			MetaVersion:   vid,
		},
	}
	if job.Policy.ExpiresAfter > 0 {
		at := job.Trigger.At.UTC().Truncate(time.Second).Add(min(job.Policy.ExpiresAfter, laki.MaxCreateExpiresAhead))
		req.ExpiresAt = &at
	}
	k, err := iss.CreateAPIKey(ctx, idem, req)
	if err != nil {
		return secretstore.Credential{}, false, err
	}
	if k.Environment != ms.Environment || k.MasterMerchantID != ms.MasterMerchantID {
		return secretstore.Credential{}, false, permanent(ms.Name, "create", "LakiConnect made key %s for %s %s, but the secret is declared for %s %s",
			k.ID, k.Environment, k.MasterMerchantID, ms.Environment, ms.MasterMerchantID)
	}
	return secretstore.Credential{
		Type: secretstore.TypeAPIKey, Environment: string(k.Environment), MasterMerchantID: k.MasterMerchantID,
		KeyID: k.ID, Secret: k.Secret, Scopes: laki.ScopeNames(k.Scopes), CreatedAt: k.CreatedAt,
	}, k.Replayed, nil
}

// createWebhookSecret adds the second signing secret. An endpoint that
// already has two live secrets holds a stale one besides the current one: a
// secret no current version holds (the previous rotation's old secret still
// in its grace, or the new secret of a rotation killed before its put). The
// stale one is ended now, with a warning, so that the endpoint can always
// rotate; the 409 itself is then a dead end that create moves past.
func (e *Engine) createWebhookSecret(ctx context.Context, iss Issuer, job Job, vid, idem string, oldOf func() (*secretstore.Credential, error)) (secretstore.Credential, bool, error) {
	ms := job.Secret
	ws, err := iss.CreateWebhookSecret(ctx, idem, ms.EndpointID)
	if errors.Is(err, laki.ErrTooManySecrets) {
		old, oerr := oldOf()
		if oerr != nil {
			return secretstore.Credential{}, false, oerr
		}
		if cerr := e.clearStaleWebhookSecrets(ctx, iss, job, vid, old); cerr != nil {
			return secretstore.Credential{}, false, cerr
		}
		return secretstore.Credential{}, false, err
	}
	if err != nil {
		return secretstore.Credential{}, false, err
	}
	if ws.EndpointID != "" && ws.EndpointID != ms.EndpointID {
		return secretstore.Credential{}, false, permanent(ms.Name, "create", "LakiConnect made secret %s for endpoint %s, not %s", ws.ID, ws.EndpointID, ms.EndpointID)
	}
	return secretstore.Credential{
		Type: secretstore.TypeWebhookSecret, Environment: string(ms.Environment), MasterMerchantID: ms.MasterMerchantID,
		EndpointID: ms.EndpointID, SecretID: ws.ID, Secret: ws.Secret, CreatedAt: ws.CreatedAt,
	}, ws.Replayed, nil
}

// clearStaleWebhookSecrets ends every live secret of the endpoint but the
// current one: an expiring one (a previous secret in its grace) at once, an
// active one only once it is older than the orphan margin. A younger active
// secret may be the new secret of a rotation live elsewhere (a replica),
// between its create and its put: the create is then retried later.
func (e *Engine) clearStaleWebhookSecrets(ctx context.Context, iss Issuer, job Job, vid string, old *secretstore.Credential) error {
	ms := job.Secret
	ep, err := iss.GetWebhookEndpoint(ctx, ms.EndpointID)
	if err != nil {
		return err
	}
	young := e.clk.Now().Add(-e.cfg.OrphanMargin)
	for _, s := range ep.Secrets {
		if s.Status == laki.StatusRevoked || (old != nil && s.ID == old.SecretID) {
			continue
		}
		if s.Status == laki.StatusActive && s.CreatedAt.After(young) {
			return fmt.Errorf("endpoint %s has a new signing secret %s, made %s ago and not stored yet: another rotation of it is in flight; trying again later",
				ms.EndpointID, s.ID, e.clk.Now().Sub(s.CreatedAt).Round(time.Second))
		}
		_, xerr := iss.ExpireWebhookSecret(ctx, IdempotencyKey(ms.Name, vid, "clear-"+s.ID), ms.EndpointID, s.ID, nil)
		if errors.Is(xerr, laki.ErrKeyRevoked) || isNotFound(xerr) {
			xerr = nil
		}
		if xerr != nil {
			return fmt.Errorf("ending stale webhook secret %s of endpoint %s: %w", s.ID, ms.EndpointID, xerr)
		}
		ev := e.baseEvent(job)
		ev.VersionID, ev.KeyID, ev.KeyLast4 = vid, s.ID, s.SecretLast4
		ev.Details = map[string]string{"action": "end_stale_webhook_secret", "previous_status": string(s.Status)}
		e.emit(ctx, ev, events.StepCreate, events.OutcomeWarning, nil)
	}
	return nil
}

// test proves the pending credential: the API key answers /whoami as
// active, in the declared environment and master merchant, with exactly the
// policy's scopes; the webhook secret verifies LakiConnect's test signature.
func (e *Engine) test(ctx context.Context, iss Issuer, job Job, vid string, c secretstore.Credential) error {
	ms := job.Secret
	ev := e.baseEvent(job)
	ev.VersionID, ev.KeyID, ev.KeyLast4 = vid, c.ID(), c.Secret.Last4()
	start := e.clk.Now()
	var err error
	if c.Type == secretstore.TypeWebhookSecret {
		err = e.testWebhook(ctx, iss, ms, vid, c)
	} else {
		err = e.testAPIKey(ctx, iss, job, c)
	}
	ev.Duration = e.clk.Now().Sub(start)
	if err != nil {
		err = stepErr(ms.Name, "test", err)
		e.emit(ctx, ev, events.StepTest, events.OutcomeFailed, err)
		return err
	}
	e.emit(ctx, ev, events.StepTest, events.OutcomeSucceeded, nil)
	return nil
}

func (e *Engine) testAPIKey(ctx context.Context, iss Issuer, job Job, c secretstore.Credential) error {
	ms := job.Secret
	w, err := iss.WhoAmIWith(ctx, c.Secret)
	if err != nil {
		if errors.Is(err, laki.ErrUnauthorized) {
			return badCredential(ms.Name, fmt.Errorf("new key %s is refused by LakiConnect: %w", c.KeyID, err))
		}
		return err
	}
	var problems []string
	if w.KeyID != c.KeyID {
		problems = append(problems, fmt.Sprintf("whoami names key %s, stored key is %s", w.KeyID, c.KeyID))
	}
	if w.Status != laki.StatusActive {
		problems = append(problems, fmt.Sprintf("status is %s, not active", w.Status))
	}
	if w.Environment != ms.Environment {
		problems = append(problems, fmt.Sprintf("environment is %s, secret is declared for %s", w.Environment, ms.Environment))
	}
	if w.MasterMerchantID != ms.MasterMerchantID {
		problems = append(problems, fmt.Sprintf("master merchant is %s, secret is declared for %s", w.MasterMerchantID, ms.MasterMerchantID))
	}
	if got, want := sortedScopes(w.Scopes), sortedScopes(job.Policy.Scopes); !slices.Equal(got, want) {
		problems = append(problems, fmt.Sprintf("scopes are %v, policy wants exactly %v", got, want))
	}
	if len(problems) > 0 {
		return badCredential(ms.Name, fmt.Errorf("new key %s: %v", c.KeyID, problems))
	}
	return nil
}

func (e *Engine) testWebhook(ctx context.Context, iss Issuer, ms inventory.ManagedSecret, vid string, c secretstore.Credential) error {
	if e.cfg.Verifier == nil {
		return permanent(ms.Name, "test", "no signature verifier configured for webhook secrets")
	}
	// test_signature has no side effect; a fresh key per call keeps a
	// replayed (old, out-of-tolerance) signature from coming back.
	idem := IdempotencyKey(ms.Name, vid, "test-"+strconv.FormatInt(e.clk.Now().UnixNano(), 36))
	ts, err := iss.TestWebhookSignature(ctx, idem, ms.EndpointID)
	if err != nil {
		return err
	}
	if err := e.cfg.Verifier.Verify(ts.SignatureHeader, []byte(ts.Payload), c.Secret); err != nil {
		return badCredential(ms.Name, fmt.Errorf("test signature of endpoint %s does not verify under new secret %s: %w", ms.EndpointID, c.SecretID, err))
	}
	return nil
}

// revokeOldFirst ends the exposed key before its replacement exists.
func (e *Engine) revokeOldFirst(ctx context.Context, iss Issuer, job Job, vid string, old *secretstore.Credential) error {
	ev := e.baseEvent(job)
	ev.VersionID, ev.PreviousKeyID = vid, old.KeyID
	ev.Details = map[string]string{"action": "revoke_first"}
	_, err := iss.RevokeAPIKey(ctx, IdempotencyKey(job.Secret.Name, vid, "revoke-first"), old.KeyID)
	if err != nil && !isNotFound(err) {
		err = stepErr(job.Secret.Name, "revoke first", err)
		e.emit(ctx, ev, events.StepRetire, events.OutcomeFailed, err)
		return err
	}
	e.emit(ctx, ev, events.StepRetire, events.OutcomeSucceeded, nil)
	return nil
}

// endOld schedules the old credential's end at LakiConnect (expire at now +
// grace; revoke at once for zero grace) so that it ends even if the daemon
// never runs again. It looks first and does nothing when the end is already
// scheduled no later than wanted: a replay never extends a grace.
func (e *Engine) endOld(ctx context.Context, iss Issuer, job Job, vid string, old *secretstore.Credential, grace time.Duration) (*time.Time, error) {
	ms := job.Secret
	now := e.clk.Now().UTC()
	target := now.Add(grace).Truncate(time.Second)
	if target.Before(now) {
		target = now
	}
	ev := e.baseEvent(job)
	ev.VersionID, ev.PreviousKeyID = vid, old.ID()
	ev.Details = map[string]string{"grace": grace.String()}
	start := e.clk.Now()
	var endsAt *time.Time
	var err error
	if old.Type == secretstore.TypeWebhookSecret {
		endsAt, err = e.endOldWebhook(ctx, iss, ms, vid, old, grace, target)
	} else {
		endsAt, err = e.endOldKey(ctx, iss, ms, vid, old, grace, target)
	}
	ev.Duration = e.clk.Now().Sub(start)
	if err != nil {
		err = stepErr(ms.Name, "end old credential", err)
		e.emit(ctx, ev, events.StepRetire, events.OutcomeFailed, err)
		return nil, err
	}
	if endsAt != nil {
		ev.Details["ends_at"] = endsAt.UTC().Format(time.RFC3339)
	}
	ev.Details["action"] = "end_old"
	e.emit(ctx, ev, events.StepRetire, events.OutcomeStarted, nil)
	return endsAt, nil
}

func (e *Engine) endOldKey(ctx context.Context, iss Issuer, ms inventory.ManagedSecret, vid string, old *secretstore.Credential, grace time.Duration, target time.Time) (*time.Time, error) {
	// One call, no look first: LakiConnect's calls per key are the scarce
	// ones (100/s), and both requests are idempotent by their keys.
	if grace == 0 {
		k, err := iss.RevokeAPIKey(ctx, IdempotencyKey(ms.Name, vid, "revoke-old"), old.KeyID)
		if isNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return k.RevokedAt, nil
	}
	k, err := iss.ExpireAPIKey(ctx, IdempotencyKey(ms.Name, vid, "expire-old"), old.KeyID, &target)
	if isNotFound(err) {
		return nil, nil
	}
	if errors.Is(err, laki.ErrIdempotencyKeyReused) || errors.Is(err, laki.ErrKeyRevoked) {
		// Already ended, or an earlier pass asked with another expires_at:
		// look at what stands (rare, so the extra call is fine here).
		if k, err = iss.GetAPIKey(ctx, old.KeyID); err == nil {
			if k.Status == laki.StatusActive {
				return nil, fmt.Errorf("old key %s is still active after an earlier expire request", old.KeyID)
			}
			return endOf(k), nil
		}
	}
	if err != nil {
		return nil, err
	}
	return endOf(k), nil
}

func endOf(k laki.APIKey) *time.Time {
	if k.Status == laki.StatusRevoked {
		return k.RevokedAt
	}
	return k.ExpiresAt
}

func (e *Engine) endOldWebhook(ctx context.Context, iss Issuer, ms inventory.ManagedSecret, vid string, old *secretstore.Credential, grace time.Duration, target time.Time) (*time.Time, error) {
	var at *time.Time
	step := "revoke-old"
	if grace > 0 {
		at, step = &target, "expire-old"
	}
	_, err := iss.ExpireWebhookSecret(ctx, IdempotencyKey(ms.Name, vid, step), ms.EndpointID, old.SecretID, at)
	if isNotFound(err) {
		return nil, nil // the endpoint or the secret is gone
	}
	if errors.Is(err, laki.ErrIdempotencyKeyReused) || errors.Is(err, laki.ErrKeyRevoked) {
		err = nil // an earlier pass asked already, or it has ended: its end stands
	}
	if err != nil {
		return nil, err
	}
	if at == nil {
		n := target
		at = &n
	}
	return at, nil
}

// ErrCredentialFailedTest marks a pending credential that LakiConnect
// refuses or describes wrongly: resuming it again cannot help, so the
// rotation is abandoned (see abandon).
var ErrCredentialFailedTest = errors.New("the new credential failed its test")

func badCredential(name string, err error) error {
	return &StepError{Secret: name, Step: "test", Err: fmt.Errorf("%w: %w", ErrCredentialFailedTest, err), Permanent: true}
}

// abandon gives up a rotation whose credential failed its test: AWSPENDING
// goes back onto the AWSCURRENT version (no rotation in flight, so the next
// cause starts afresh instead of resuming a bad credential forever) and the
// bad credential is ended. The failure tags name the abandoned version, so
// that the cause goes on with its next version (at most maxVersionAttempts)
// rather than reporting the abandoned one as superseded.
func (e *Engine) abandon(ctx context.Context, iss Issuer, job Job, vid, curID string, c secretstore.Credential) bool {
	ms := job.Secret
	ev := e.baseEvent(job)
	ev.VersionID, ev.KeyID = vid, c.ID()
	ev.Severity = events.SeverityCritical
	ev.Details = map[string]string{"action": "abandon_rotation"}
	var errs []error
	if curID != "" {
		errs = append(errs, e.store.MoveStage(ctx, ms.Name, secretstore.StagePending, curID, vid))
	}
	errs = append(errs, e.store.Tag(ctx, ms.Name, map[string]string{TagFailingVersion: vid}))
	if c.Type == secretstore.TypeWebhookSecret {
		_, err := iss.ExpireWebhookSecret(ctx, IdempotencyKey(ms.Name, vid, "abandon"), ms.EndpointID, c.SecretID, nil)
		errs = append(errs, err)
	} else if c.KeyID != "" {
		_, err := iss.RevokeAPIKey(ctx, IdempotencyKey(ms.Name, vid, "abandon"), c.KeyID)
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		e.emit(ctx, ev, events.StepTest, events.OutcomeFailed, stepErr(ms.Name, "abandon", err))
		return false
	}
	e.emit(ctx, ev, events.StepTest, events.OutcomeRefused, nil)
	return true
}
