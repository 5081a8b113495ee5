package secretsmanager

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// While a batch keeps every turn of the write quota spoken for, an
// emergency's calls go ahead of the batch's next ones: the batch gets only
// the turns it already held while the emergency's calls are waiting.
func TestUrgentCallsGoAheadOfABatch(t *testing.T) {
	const batchWorkers, urgentWorkers, urgentEach = 10, 3, 5
	l := newLane(200, 1)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()

	var urgentWaiting atomic.Bool
	var batchTurnsDuring atomic.Int64
	var batch sync.WaitGroup
	for range batchWorkers {
		batch.Add(1)
		go func() {
			defer batch.Done()
			for l.wait(ctx) == nil {
				if urgentWaiting.Load() {
					batchTurnsDuring.Add(1)
				}
			}
		}()
	}
	// Let the batch hold the quota's queue.
	for range 3 * batchWorkers {
		_ = l.wait(context.Background())
	}

	urgentWaiting.Store(true)
	urgent := secretstore.WithUrgent(context.Background())
	var wg sync.WaitGroup
	for range urgentWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range urgentEach {
				if err := l.wait(urgent); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	urgentWaiting.Store(false)
	stop()
	batch.Wait()

	// Each batch worker may hold one turn taken before the urgent calls
	// came; a few more may slip in between one urgent call and the next.
	// Without the lane each urgent call queues behind every batch worker:
	// about batchWorkers turns per urgent call.
	if got, most := batchTurnsDuring.Load(), int64(2*batchWorkers); got > most {
		t.Errorf("the batch took %d turns while %d urgent calls waited; want at most %d", got, urgentWorkers*urgentEach, most)
	}
}
