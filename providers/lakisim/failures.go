package lakisim

import (
	"cmp"
	"net/http"
	"slices"
	"time"

	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
)

// maxFailureRecords bounds memory under a flood of refused requests.
const maxFailureRecords = 100_000

// authFailure is one refused request. merchant is "" when the key is
// unknown: such a failure counts for every merchant of the environment.
type authFailure struct {
	env      laki.Environment
	merchant string
	keyID    string // "" when unknown in this environment
	prefix   string
	status   int
	at       time.Time
}

type spikeGroup struct {
	env      laki.Environment
	merchant string
	keyID    string
	prefix   string
	status   int
}

func (f authFailure) group() spikeGroup {
	return spikeGroup{env: f.env, merchant: f.merchant, keyID: f.keyID, prefix: f.prefix, status: f.status}
}

func (s *Simulator) recordFailureLocked(env laki.Environment, merchant string, keyID *string, prefix string, status int, now time.Time) {
	f := authFailure{env: env, merchant: merchant, prefix: prefix, status: status, at: now}
	if keyID != nil {
		f.keyID = *keyID
	}
	if len(s.failures) >= maxFailureRecords {
		s.failures = slices.Delete(s.failures, 0, len(s.failures)/10)
	}
	s.failures = append(s.failures, f)
	s.checkSpikeLocked(f, now)
}

// checkSpikeLocked raises security.auth_failure_spike when the failures of
// f's group within the window reach the threshold, at most once per window.
func (s *Simulator) checkSpikeLocked(f authFailure, now time.Time) {
	if s.spikeThreshold < 0 {
		return
	}
	g := f.group()
	if last, ok := s.lastSpike[g]; ok && now.Sub(last) < s.spikeWindow {
		return
	}
	from := now.Add(-s.spikeWindow)
	count := 0
	for i := len(s.failures) - 1; i >= 0; i-- {
		o := s.failures[i]
		if !o.at.After(from) {
			break
		}
		if o.group() == g {
			count++
		}
	}
	if count < s.spikeThreshold {
		return
	}
	s.lastSpike[g] = now
	data := lakiconnect.AuthFailureSpikeData{
		KeyPrefix: f.prefix, StatusCode: f.status, Count: count, WindowSeconds: int(s.spikeWindow / time.Second),
	}
	if f.keyID != "" {
		id := f.keyID
		data.KeyID = &id
	}
	merchants := []string{f.merchant}
	if f.merchant == "" {
		merchants = s.merchants
	}
	for _, m := range merchants {
		s.emitLocked(f.env, m, laki.EventAuthFailureSpike, data, now)
	}
}

func (s *Simulator) listAuthFailures(c *call) response {
	if !c.query.Has("since") {
		return badRequest("since", "since is required (RFC 3339 time)")
	}
	since, err := time.Parse(time.RFC3339, c.query.Get("since"))
	if err != nil {
		return badRequest("since", "since must be an RFC 3339 time, got %q", c.query.Get("since"))
	}
	until := c.now.Add(time.Nanosecond) // open end: everything up to now
	if c.query.Has("until") {
		until, err = time.Parse(time.RFC3339, c.query.Get("until"))
		if err != nil {
			return badRequest("until", "until must be an RFC 3339 time, got %q", c.query.Get("until"))
		}
		if !until.After(since) {
			return badRequest("until", "until must be after since")
		}
	}
	byGroup := map[spikeGroup]*laki.AuthFailureCount{}
	var order []spikeGroup
	for _, f := range s.failures {
		if f.env != c.env || (f.merchant != "" && f.merchant != c.key.merchant) {
			continue
		}
		if f.at.Before(since) || !f.at.Before(until) {
			continue
		}
		g := f.group()
		g.merchant = ""
		n, ok := byGroup[g]
		if !ok {
			n = &laki.AuthFailureCount{KeyPrefix: f.prefix, StatusCode: f.status, FirstSeenAt: f.at}
			if f.keyID != "" {
				id := f.keyID
				n.KeyID = &id
			}
			byGroup[g] = n
			order = append(order, g)
		}
		n.Count++
		n.LastSeenAt = f.at
	}
	out := struct {
		Data []laki.AuthFailureCount `json:"data"`
	}{Data: []laki.AuthFailureCount{}}
	for _, g := range order {
		out.Data = append(out.Data, *byGroup[g])
	}
	slices.SortStableFunc(out.Data, func(a, b laki.AuthFailureCount) int {
		return cmp.Or(b.Count-a.Count, a.FirstSeenAt.Compare(b.FirstSeenAt))
	})
	return jsonResponse(http.StatusOK, out)
}
