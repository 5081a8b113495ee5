package lakisim

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"time"

	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakiconnect/webhooksig"
)

// deliveryTimeout is how long a receiver has to answer, as LakiConnect gives.
const deliveryTimeout = 10 * time.Second

// deliver posts one event to one endpoint until it answers 2xx or the
// attempts run out; with DeliverTwice it then posts it once more.
func (s *Simulator) deliver(ev lakiconnect.Event, body []byte, endpointID, url string) {
	defer s.wg.Done()
	if !s.deliverUntilAccepted(ev, body, endpointID, url) || !s.deliverTwice {
		return
	}
	s.deliverUntilAccepted(ev, body, endpointID, url)
}

func (s *Simulator) deliverUntilAccepted(ev lakiconnect.Event, body []byte, endpointID, url string) bool {
	wait := s.backoff
	for attempt := 1; attempt <= s.attempts; attempt++ {
		d := s.attempt(ev, body, endpointID, url, attempt)
		s.mu.Lock()
		s.deliveries = append(s.deliveries, d)
		s.mu.Unlock()
		if d.Succeeded() {
			return true
		}
		s.log.Warn("lakisim: webhook delivery failed", "event_id", ev.ID, "endpoint_id", endpointID, "attempt", attempt, "status", d.StatusCode, "error", d.Error)
		if attempt == s.attempts {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		wait *= 2
	}
	return false
}

func (s *Simulator) attempt(ev lakiconnect.Event, body []byte, endpointID, url string, n int) Delivery {
	s.mu.Lock()
	now := s.now()
	ep := s.endpoints[endpointID]
	header := webhooksig.Sign(now, body, ep.signingSecrets(now)...)
	s.mu.Unlock()

	d := Delivery{EventID: ev.ID, EventType: ev.Type, EndpointID: endpointID, URL: url, Attempt: n, At: now}
	ctx, cancel := context.WithTimeout(s.ctx, deliveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		d.Error = err.Error()
		return d
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "LakiConnect-Webhooks/1.0 (lakisim)")
	req.Header.Set(lakiconnect.SignatureHeader, header)
	resp, err := s.client.Do(req)
	if err != nil {
		d.Error = err.Error()
		return d
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	_ = resp.Body.Close()
	d.StatusCode = resp.StatusCode
	return d
}
