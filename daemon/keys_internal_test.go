package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/localstore"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// The security webhook's signing secrets are held (no store read per
// delivery) and dropped the moment the rotator changes that secret.
func TestSigningSecretsAreHeldAndDroppedOnRotation(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	st, err := localstore.Open("", localstore.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	encode := func(v string) secret.Value {
		b, err := secretstore.Credential{Type: secretstore.TypeWebhookSecret, Environment: "sandbox", MasterMerchantID: "mm_1",
			EndpointID: "we_1", SecretID: "whs_1", Secret: secret.New(v), CreatedAt: clk.Now()}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	first := encode("whsec_first")
	if _, err := st.Create(ctx, "sec/sandbox", "test", nil, &first); err != nil {
		t.Fatal(err)
	}
	held := newStoreSigningSecrets(st, "sec/sandbox", clk)
	read := func() []string {
		vs, err := held.SigningSecrets(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, v := range vs {
			out = append(out, v.Reveal())
		}
		return out
	}
	if got := read(); len(got) != 1 || got[0] != "whsec_first" {
		t.Fatalf("held %v", got)
	}
	// The rotator writes a pending version: without the event, the held
	// secrets stay; with it, the pending one is read at once.
	if err := st.PutPending(ctx, "sec/sandbox", "00000000-0000-0000-0000-000000000002", encode("whsec_second")); err != nil {
		t.Fatal(err)
	}
	if got := read(); len(got) != 1 {
		t.Fatalf("held secrets re-read without a rotation event: %v", got)
	}
	held.Emit(ctx, events.Event{Step: events.StepCreate, Outcome: events.OutcomeSucceeded, Secret: "sec/other"})
	if got := read(); len(got) != 1 {
		t.Fatalf("another secret's rotation dropped the held secrets: %v", got)
	}
	held.Emit(ctx, events.Event{Step: events.StepCreate, Outcome: events.OutcomeSucceeded, Secret: "sec/sandbox"})
	if got := read(); len(got) != 2 || got[1] != "whsec_second" {
		t.Errorf("after the rotation event the receiver holds %v; want the current and the pending secret", got)
	}
}
