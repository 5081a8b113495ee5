// Reading, checking and writing a secret's stored credential.

package rotator

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// read gets one stored version and checks that it belongs to the secret's
// declared environment, merchant and kind: sandbox and production never mix.
func (e *Engine) read(ctx context.Context, ms inventory.ManagedSecret, sel secretstore.Selector, step string) (secretstore.Credential, error) {
	v, err := e.store.Get(ctx, ms.Name, sel)
	if err != nil {
		return secretstore.Credential{}, stepErr(ms.Name, step, err)
	}
	return e.decode(ms, v, step)
}

func matches(ms inventory.ManagedSecret, c secretstore.Credential) error {
	want := ms.Kind.CredentialType()
	switch {
	case c.Type != want:
		return fmt.Errorf("stored type %q, but the secret is declared %s", c.Type, ms.Kind)
	case c.Environment != string(ms.Environment):
		return fmt.Errorf("stored credential is for %s, but the secret is declared for %s", c.Environment, ms.Environment)
	case c.MasterMerchantID != ms.MasterMerchantID:
		return fmt.Errorf("stored credential is for master merchant %s, but the secret is declared for %s", c.MasterMerchantID, ms.MasterMerchantID)
	case want == secretstore.TypeWebhookSecret && c.EndpointID != ms.EndpointID:
		return fmt.Errorf("stored secret is for endpoint %s, but the secret is declared for %s", c.EndpointID, ms.EndpointID)
	}
	return nil
}

func (e *Engine) put(ctx context.Context, job Job, vid string, c secretstore.Credential) error {
	ev := e.baseEvent(job)
	ev.VersionID, ev.KeyID = vid, c.ID()
	start := e.clk.Now()
	v, err := c.Encode()
	if err == nil {
		err = e.store.PutPending(ctx, job.Secret.Name, vid, v)
	}
	ev.Duration = e.clk.Now().Sub(start)
	ev.Details = map[string]string{"action": "put_pending"}
	if err != nil {
		err = stepErr(job.Secret.Name, "put pending", err)
		e.emit(ctx, ev, events.StepCreate, events.OutcomeFailed, err)
		return err
	}
	e.emit(ctx, ev, events.StepCreate, events.OutcomeSucceeded, nil)
	return nil
}

func isNotFound(err error) bool { return errors.Is(err, laki.ErrNotFound) }

func sortedScopes(s []laki.Scope) []laki.Scope {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
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
