package securityevents_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inbound"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakiconnect/webhooksig"
	"github.com/lakirotator/lakirotator/securityevents"
)

const merchant = "mm_AAAABBBBCCCCDDDD"

// heldSecrets models the store: what the receiver would read now.
type heldSecrets struct {
	mu      sync.Mutex
	cached  []secret.Value // what a cached read returns
	current []secret.Value // what a fresh read returns
	fresh   int
}

func (h *heldSecrets) SigningSecrets(_ context.Context, fresh bool) ([]secret.Value, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if fresh {
		h.fresh++
		h.cached = h.current
	}
	return h.cached, nil
}

type handled struct {
	mu  sync.Mutex
	got []lakiconnect.Event
}

func (h *handled) handle(_ context.Context, e lakiconnect.Event) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, e)
	return nil
}

func (h *handled) events() []lakiconnect.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]lakiconnect.Event(nil), h.got...)
}

type fixture struct {
	srv      *httptest.Server
	clock    *clock.Fake
	held     *heldSecrets
	handled  *handled
	rec      *events.Recorder
	refusals *inbound.Refusals
}

var (
	oldSecret = secret.New("whsec_" + strings.Repeat("A", 43) + "=")
	newSecret = secret.New("whsec_" + strings.Repeat("B", 43) + "=")
)

func start(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		clock:   clock.NewFake(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)),
		held:    &heldSecrets{cached: []secret.Value{oldSecret}, current: []secret.Value{oldSecret}},
		handled: &handled{},
		rec:     &events.Recorder{},
	}
	f.refusals = inbound.NewRefusals(inbound.RefusalsOptions{Events: f.rec, Clock: f.clock})
	r, err := securityevents.New(securityevents.Options{
		Environment: laki.Production, MasterMerchants: []string{merchant},
		Secrets: f.held, Handle: f.handled.handle, Clock: f.clock, Events: f.rec, Refusals: f.refusals,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go r.Run(ctx)
	f.srv = httptest.NewServer(r)
	t.Cleanup(f.srv.Close)
	return f
}

func event(id, typ, mm string) []byte {
	b, _ := json.Marshal(lakiconnect.Event{
		ID: id, Object: "event", Type: typ, Created: 1, MasterMerchantID: mm,
		Environment: laki.Production, IdempotencyKey: "idem-" + id,
		Data: json.RawMessage(`{"key_id":"key_000000000000000000000001","source":"public_repository"}`),
	})
	return b
}

func (f *fixture) deliver(t *testing.T, body []byte, header string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL, bytes.NewReader(body))
	if header != "" {
		req.Header.Set(lakiconnect.SignatureHeader, header)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, fmt.Sprint(m)
}

func TestVerifiedEventIsActedOnOnceDespiteRedelivery(t *testing.T) {
	f := start(t)
	body := event("evt_1", laki.EventAPIKeyExposed, merchant)
	for i := 0; i < 3; i++ {
		status, _ := f.deliver(t, body, webhooksig.Sign(f.clock.Now(), body, oldSecret))
		assert.Equal(t, http.StatusOK, status, "delivery %d", i)
	}
	require.Eventually(t, func() bool { return len(f.handled.events()) == 1 }, 2*time.Second, 5*time.Millisecond)
	assert.Equal(t, "evt_1", f.handled.events()[0].ID)
	assert.Empty(t, f.rec.Events(), "nothing refused")
}

func TestForgedStaleMalformedAndForeignDeliveriesAreRefusedAndRecorded(t *testing.T) {
	f := start(t)
	body := event("evt_2", laki.EventAPIKeyExposed, merchant)
	forger := secret.New("whsec_" + strings.Repeat("Z", 43) + "=")
	foreign := event("evt_3", laki.EventAPIKeyExposed, "mm_ZZZZZZZZZZZZZZZZ")
	cases := []struct {
		name   string
		body   []byte
		header string
		status int
	}{
		{"forged", body, webhooksig.Sign(f.clock.Now(), body, forger), 401},
		{"stale", body, webhooksig.Sign(f.clock.Now().Add(-301*time.Second), body, oldSecret), 401},
		{"from the future", body, webhooksig.Sign(f.clock.Now().Add(301*time.Second), body, oldSecret), 401},
		{"malformed", body, "t=abc,v1=00", 400},
		{"missing", body, "", 400},
		{"body changed after signing", append([]byte(" "), body...), webhooksig.Sign(f.clock.Now(), body, oldSecret), 401},
		{"other merchant", foreign, webhooksig.Sign(f.clock.Now(), foreign, oldSecret), 400},
	}
	for _, c := range cases {
		status, _ := f.deliver(t, c.body, c.header)
		assert.Equal(t, c.status, status, c.name)
	}
	assert.Empty(t, f.handled.events(), "no refused delivery is acted on")
	// One record per reason code (the rest are counted into a summary at
	// the end of the minute), and the counts add up to every refusal.
	f.refusals.Flush(context.Background())
	refused := f.rec.Events()
	codes, total := map[string]bool{}, 0
	for _, e := range refused {
		assert.Equal(t, events.OutcomeRefused, e.Outcome)
		assert.Equal(t, events.SourceLakiEvent, e.Source)
		assert.NotContains(t, fmt.Sprint(e), oldSecret.Reveal())
		assert.NotContains(t, fmt.Sprint(e), forger.Reveal())
		codes[e.Details["reason"]] = true
		n, err := strconv.Atoi(e.Details["count"])
		require.NoError(t, err)
		total += n
	}
	assert.Equal(t, map[string]bool{"bad_signature": true, "stale_timestamp": true, "malformed_signature": true, "wrong_merchant": true}, codes)
	assert.Equal(t, len(cases), total, "every refusal is counted")
}

func TestRotationOfTheReceiversOwnSecretBreaksNothing(t *testing.T) {
	f := start(t)
	// The endpoint's secret was rotated: LakiConnect now signs with both, then
	// only with the new one, while the receiver's cache still holds the old.
	f.held.mu.Lock()
	f.held.current = []secret.Value{oldSecret, newSecret}
	f.held.mu.Unlock()
	body := event("evt_4", laki.EventAPIKeyRevoked, merchant)
	status, _ := f.deliver(t, body, webhooksig.Sign(f.clock.Now(), body, newSecret))
	assert.Equal(t, http.StatusOK, status)
	require.Eventually(t, func() bool { return len(f.handled.events()) == 1 }, 2*time.Second, 5*time.Millisecond)
	assert.Equal(t, 1, f.held.fresh, "one fresh read after the cached secrets failed")
}
