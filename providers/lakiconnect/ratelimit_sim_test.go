package lakiconnect_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/laki"
	lc "github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakisim"
	"github.com/lakirotator/lakirotator/providers/lakisim/lakisimtest"
)

// The client's per-key limit keeps a batch under LakiConnect's: against a
// simulator allowing 5 requests per second per key (real time), 12 calls
// with the limit at 4/s meet no 429, while the same calls without it do.
// Retries are off, so a 429 cannot hide behind one.
func TestRateLimitKeepsABatchUnderLakiConnects(t *testing.T) {
	h := startSim(t, lakisimtest.WithOptions(func(o *lakisim.Options) { o.RateLimit = 5 }))
	ctx := context.Background()
	client := func(perSecond float64) *lc.Client {
		c, err := lc.NewClient(lc.Config{
			BaseURL: h.fx.SandboxURL, APIKey: h.fx.SandboxKey, Transport: h.fx.Server.Client().Transport,
			MaxRetries: -1, RateLimit: perSecond, RateBurst: 4,
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	limited := client(4)
	start := time.Now()
	for i := range 12 {
		if _, err := limited.WhoAmI(ctx); err != nil {
			t.Fatalf("call %d with the limit: %v", i, err)
		}
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("12 calls at 4/s with a burst of 4 took %v: the client did not wait", took)
	}
	time.Sleep(time.Second)
	unlimited := client(0)
	var refused error
	for range 12 {
		if _, err := unlimited.WhoAmI(ctx); err != nil {
			refused = err
			break
		}
	}
	if !errors.Is(refused, laki.ErrRateLimited) {
		t.Fatalf("without the limit the simulator did not refuse (%v): the test proves nothing", refused)
	}
}
