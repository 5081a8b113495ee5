package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/consumer"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/lakiconnect/webhooksig"
)

var epoch = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

func delivery(merchantID, idem string) []byte {
	return fmt.Appendf(nil, `{"id":"evt_aaaaaaaaaaaaaaaaaaaaaaaa","object":"event","type":"test.ping","created":%d,`+
		`"master_merchant_id":%q,"environment":"sandbox","idempotency_key":%q,"data":{}}`, epoch.Unix(), merchantID, idem)
}

// A secret in every stage: previous, current and pending (mid-rotation).
func rotatingEndpoint(t *testing.T) (name string, prev, cur, pend secret.Value) {
	s := store{t, smClient()}
	name = secretName(t, "hook")
	p, c, n := webhookSecret("whs_prev", "whsec_previous_aaaaaaaaaaaaaaaa"), webhookSecret("whs_cur", "whsec_current_bbbbbbbbbbbbbbbbb"),
		webhookSecret("whs_pend", "whsec_pending_ccccccccccccccccc")
	s.create(name, p)
	s.putPending(name, c)
	s.promote(name, c)
	s.putPending(name, n)
	return name, p.Secret, c.Secret, n.Secret
}

func TestVerifierTable(t *testing.T) {
	name, prev, cur, pend := rotatingEndpoint(t)
	other := secret.New("whsec_someone_else_dddddddddddddd")
	body := delivery(merchant, "idem-1")
	type tc struct {
		name   string
		at     time.Time // signing time; the receiver's clock is epoch
		body   []byte
		header func(at time.Time, b []byte) string
		// later moves the receiver's clock before verifying.
		later time.Duration
		want  error
	}
	sign := func(ss ...secret.Value) func(time.Time, []byte) string {
		return func(at time.Time, b []byte) string { return webhooksig.Sign(at, b, ss...) }
	}
	cases := []tc{
		{name: "current only", header: sign(cur)},
		{name: "pending only (the new secret signs first during a rotation)", header: sign(pend)},
		{name: "previous within its grace", header: sign(prev)},
		{name: "several v1, one matches", header: sign(other, cur)},
		{name: "several v1, the last matches", header: sign(other, other, pend)},
		{name: "several v1, none matches", header: sign(other, other), want: webhooksig.ErrNoValidSignature},
		{name: "previous after its grace", header: sign(prev), later: 2 * time.Hour, want: webhooksig.ErrNoValidSignature},
		{name: "t 300 s old", at: epoch.Add(-300 * time.Second), header: sign(cur)},
		{name: "t 301 s old", at: epoch.Add(-301 * time.Second), header: sign(cur), want: webhooksig.ErrTimestampOutOfTolerance},
		{name: "t 300 s ahead", at: epoch.Add(300 * time.Second), header: sign(cur)},
		{name: "t 301 s ahead", at: epoch.Add(301 * time.Second), header: sign(cur), want: webhooksig.ErrTimestampOutOfTolerance},
		{name: "body changed after signing", header: func(at time.Time, b []byte) string {
			return webhooksig.Sign(at, delivery(merchant, "idem-other"), cur)
		}, want: webhooksig.ErrNoValidSignature},
		{name: "wrong master merchant, validly signed", body: delivery("mm_ffffffffffffffff", "idem-1"), header: sign(cur), want: consumer.ErrWrongMerchant},
		{name: "malformed header", header: func(time.Time, []byte) string { return "v1=abc,t=1" }, want: webhooksig.ErrMalformedHeader},
		{name: "uppercase hex", header: func(at time.Time, b []byte) string { return strings.ToUpper(webhooksig.Sign(at, b, cur)) }, want: webhooksig.ErrMalformedHeader},
		{name: "not an event", body: []byte(`{"hello":1}`), header: sign(cur), want: consumer.ErrMalformedBody},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := clock.NewFake(epoch)
			v, err := consumer.NewVerifier(smClient(), name, consumer.VerifierOptions{Clock: clk, PreviousGrace: time.Hour,
				Dedup: consumer.NewMemoryDeduper(24*time.Hour, clk), MinRefreshInterval: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			at := c.at
			if at.IsZero() {
				at = epoch.Add(c.later)
			}
			b := c.body
			if b == nil {
				b = body
			}
			clk.Set(epoch.Add(c.later))
			ev, err := v.Verify(context.Background(), c.header(at, b), b)
			if c.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if ev.IdempotencyKey != "idem-1" || ev.MasterMerchantID != merchant {
					t.Fatalf("event %+v", ev)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("Verify: %v, want %v", err, c.want)
			}
			for _, s := range []secret.Value{prev, cur, pend} {
				if strings.Contains(err.Error(), s.Reveal()) {
					t.Fatalf("error quotes a secret: %v", err)
				}
			}
		})
	}
}

func TestVerifierDropsReplaysThroughTheHandler(t *testing.T) {
	name, _, cur, _ := rotatingEndpoint(t)
	clk := clock.NewFake(epoch)
	v, err := consumer.NewVerifier(smClient(), name, consumer.VerifierOptions{Clock: clk, Dedup: consumer.NewMemoryDeduper(time.Hour, clk)})
	if err != nil {
		t.Fatal(err)
	}
	processed := 0
	failNext := true
	srv := httptest.NewServer(v.Handler(func(_ context.Context, ev consumer.Event) error {
		if failNext {
			failNext = false
			return errors.New("database down")
		}
		processed++
		return nil
	}))
	defer srv.Close()
	post := func(b []byte) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(string(b)))
		req.Header.Set(consumer.SignatureHeader, webhooksig.Sign(clk.Now(), b, cur))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	b := delivery(merchant, "idem-replay")
	// A failed processing is not remembered: the redelivery is processed.
	if got := []int{post(b), post(b), post(b)}; fmt.Sprint(got) != "[500 200 200]" || processed != 1 {
		t.Fatalf("answers %v, processed %d; want [500 200 200] and 1", got, processed)
	}
	if _, err := v.Verify(context.Background(), webhooksig.Sign(clk.Now(), b, cur), b); !errors.Is(err, consumer.ErrDuplicate) {
		t.Fatalf("replay: %v, want ErrDuplicate", err)
	}
	// After the dedup window the key is forgotten (LakiConnect stopped redelivering long before).
	clk.Advance(2 * time.Hour)
	if _, err := v.Verify(context.Background(), webhooksig.Sign(clk.Now(), b, cur), b); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

// A delivery signed only with a secret newer than those held is verified
// after one prompt re-read, without waiting for the TTL.
func TestVerifierReadsAgainWhenSignedWithANewerSecret(t *testing.T) {
	s := store{t, smClient()}
	name := secretName(t, "hook")
	old, next := webhookSecret("whs_a", "whsec_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), webhookSecret("whs_b", "whsec_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
	s.create(name, old)
	clk := clock.NewFake(epoch)
	v, err := consumer.NewVerifier(smClient(), name, consumer.VerifierOptions{Clock: clk, TTL: time.Hour, PreviousGrace: -1})
	if err != nil {
		t.Fatal(err)
	}
	b := delivery(merchant, "k1")
	if _, err := v.Verify(context.Background(), webhooksig.Sign(clk.Now(), b, old.Secret), b); err != nil {
		t.Fatal(err)
	}
	s.putPending(name, next)
	s.promote(name, next)
	if _, err := v.Verify(context.Background(), webhooksig.Sign(clk.Now(), b, next.Secret), b); err != nil {
		t.Fatalf("signed with the new secret only: %v", err)
	}
	// PreviousGrace < 0: the old secret is no longer accepted once seen as previous.
	if _, err := v.Verify(context.Background(), webhooksig.Sign(clk.Now(), b, old.Secret), b); !errors.Is(err, webhooksig.ErrNoValidSignature) {
		t.Fatalf("old secret after promote with no grace: %v", err)
	}
}

// After a compromise (the rotator's intent tag says so) the previous secret
// is exposed: it is never accepted, whatever the grace.
func TestVerifierNeverAcceptsThePreviousSecretOfACompromise(t *testing.T) {
	name, prev, cur, _ := rotatingEndpoint(t)
	store{t, smClient()}.tag(name, "lakirotator:intent", "compromise trg_1 1780300800 lakiconnect_event")
	clk := clock.NewFake(epoch)
	v, err := consumer.NewVerifier(smClient(), name, consumer.VerifierOptions{Clock: clk, PreviousGrace: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	b := delivery(merchant, "k")
	if _, err := v.Verify(context.Background(), webhooksig.Sign(clk.Now(), b, prev), b); !errors.Is(err, webhooksig.ErrNoValidSignature) {
		t.Fatalf("exposed previous secret: %v", err)
	}
	if _, err := v.Verify(context.Background(), webhooksig.Sign(clk.Now(), b, cur), b); err != nil {
		t.Fatalf("current: %v", err)
	}
}

// Secrets Manager unreachable: what is held keeps verifying, through forced
// and TTL refreshes alike; nothing held yet is ErrNoSecrets (503 at the handler).
func TestVerifierKeepsItsSecretsWhenARefreshFails(t *testing.T) {
	name, _, cur, _ := rotatingEndpoint(t)
	var down outage
	clk := clock.NewFake(epoch)
	v, err := consumer.NewVerifier(smClient(down.option), name, consumer.VerifierOptions{Clock: clk, TTL: time.Minute, MinRefreshInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b := delivery(merchant, "k")
	if _, err := v.Verify(context.Background(), webhooksig.Sign(clk.Now(), b, cur), b); err != nil {
		t.Fatal(err)
	}
	down.on.Store(true)
	clk.Advance(10 * time.Minute) // past the TTL
	if _, err := v.Verify(context.Background(), webhooksig.Sign(clk.Now(), b, cur), b); err != nil {
		t.Fatalf("during the outage: %v", err)
	}
	if err := v.Refresh(context.Background()); err == nil {
		t.Fatal("Refresh during the outage reported no error")
	}
	if _, err := v.Verify(context.Background(), webhooksig.Sign(clk.Now(), b, cur), b); err != nil {
		t.Fatalf("after a failed Refresh: %v", err)
	}
	cold, _ := consumer.NewVerifier(smClient(down.option), name, consumer.VerifierOptions{Clock: clk})
	if _, err := cold.Verify(context.Background(), webhooksig.Sign(clk.Now(), b, cur), b); !errors.Is(err, consumer.ErrNoSecrets) {
		t.Fatalf("nothing held and no store: %v, want ErrNoSecrets", err)
	}
}

func TestVerifierRefusesUnknownFormatVersionsClearly(t *testing.T) {
	s := store{t, smClient()}
	name := secretName(t, "hook")
	value := `{"format_version":2,"type":"lakiconnect_webhook_secret","environment":"sandbox","master_merchant_id":"` + merchant +
		`","endpoint_id":"we_1","secret_id":"whs_1","secret":"whsec_do_not_print_me_eeeeeeeeeeee","created_at":"2026-06-01T09:00:00Z"}`
	s.createRaw(name, value)
	v, _ := consumer.NewVerifier(smClient(), name, consumer.VerifierOptions{})
	err := v.Refresh(context.Background())
	if err == nil || !strings.Contains(err.Error(), "format_version") || !strings.Contains(err.Error(), name) || strings.Contains(err.Error(), "do_not_print_me") {
		t.Fatalf("Refresh: %v; want an error naming the secret and format_version, without the value", err)
	}
	k, _ := consumer.NewAPIKey(smClient(), name, consumer.APIKeyOptions{})
	if _, err := k.Key(context.Background()); err == nil || !strings.Contains(err.Error(), "format_version") || strings.Contains(err.Error(), "do_not_print_me") {
		t.Fatalf("Key: %v", err)
	}
}
