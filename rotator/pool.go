package rotator

import (
	"context"
	"errors"
	"sync"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// Priority orders queued jobs: lower runs first.
type Priority int

const (
	PriorityEmergency Priority = iota // compromise, personnel change
	PriorityManual                    // a person's order
	PriorityScheduled
)

// PriorityOf is the queue priority of a job: emergencies jump the queue of
// a scheduled batch.
func PriorityOf(j Job) Priority {
	switch {
	case j.Trigger.Kind.Emergency():
		return PriorityEmergency
	case j.Trigger.Kind == events.CauseManual:
		return PriorityManual
	default:
		return PriorityScheduled
	}
}

// JobOutcome is the end of one queued job.
type JobOutcome struct {
	Job    Job
	Result Result
	Err    error
	// Index is the job's position in the batch it was submitted with.
	Index int
}

// Progress reports a batch's advance after each finished job.
type Progress struct {
	Total, Done, Failed int
	Last                JobOutcome
}

// ErrClosed is the error of jobs queued when the engine closes.
var ErrClosed = errors.New("rotator: engine closed")

type item struct {
	ctx  context.Context
	job  Job
	prio Priority
	seq  uint64
	done chan JobOutcome
	idx  int // position in the submitted batch
	// holds: a job requeued in the middle of its rotation, which kept its
	// secret reserved while it waited.
	holds bool
}

func (it *item) group() string {
	return string(it.job.Secret.Environment) + "/" + it.job.Secret.MasterMerchantID
}

func (it *item) isManagement() bool { return it.job.Secret.Kind == inventory.KindManagementKey }

type pool struct {
	e       *Engine
	mu      sync.Mutex
	cond    *sync.Cond
	queue   []*item
	busy    map[string]bool // secrets being rotated
	others  map[string]int  // running non-management jobs per environment/merchant
	mgmt    map[string]int  // running management-key jobs per environment/merchant
	seq     uint64
	closed  bool
	ctx     context.Context
	cancel  context.CancelFunc
	workers sync.WaitGroup
	waiting sync.WaitGroup // requeued jobs waiting to go back to the queue
}

func newPool(e *Engine, n int) *pool {
	p := &pool{e: e, busy: map[string]bool{}, others: map[string]int{}, mgmt: map[string]int{}}
	p.cond = sync.NewCond(&p.mu)
	p.ctx, p.cancel = context.WithCancel(context.Background())
	for range n {
		p.workers.Add(1)
		go p.work()
	}
	return p
}

func (p *pool) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	queued := p.queue
	p.queue = nil
	p.cond.Broadcast()
	p.mu.Unlock()
	p.cancel()
	for _, it := range queued {
		it.done <- JobOutcome{Job: it.job, Err: ErrClosed, Index: it.idx}
	}
	p.workers.Wait()
	p.waiting.Wait()
}

// eligible: the secret is not being rotated; a management key waits until
// no other job of its environment and merchant is running and (unless it is
// an emergency) none is queued, so that it rotates last in a batch; while it
// rotates, the other jobs of its merchant wait, so that none calls with a key
// that a compromise rotation is about to revoke.
func (p *pool) eligible(it *item) bool {
	if p.busy[it.job.Secret.Name] && !it.holds {
		return false
	}
	g := it.group()
	if !it.isManagement() {
		return p.mgmt[g] == 0
	}
	if p.others[g] > 0 {
		return false
	}
	if it.prio == PriorityEmergency {
		return true
	}
	for _, o := range p.queue {
		if !o.isManagement() && o.group() == g {
			return false
		}
	}
	return true
}

// next picks the eligible job of the highest priority; among equals, the
// one whose master merchant has the fewest jobs running, then the oldest.
// Each merchant's management key has its own LakiConnect rate limit, so a
// batch spread over merchants runs at the sum of their limits instead of
// queueing behind one.
func (p *pool) next() *item {
	best, bestLoad := -1, 0
	for i, it := range p.queue {
		if !p.eligible(it) {
			continue
		}
		load := p.others[it.group()] + p.mgmt[it.group()]
		if best < 0 {
			best, bestLoad = i, load
			continue
		}
		b := p.queue[best]
		switch {
		case it.prio != b.prio:
			if it.prio < b.prio {
				best, bestLoad = i, load
			}
		case load != bestLoad:
			if load < bestLoad {
				best, bestLoad = i, load
			}
		case it.seq < b.seq:
			best, bestLoad = i, load
		}
	}
	if best < 0 {
		return nil
	}
	it := p.queue[best]
	p.queue = append(p.queue[:best], p.queue[best+1:]...)
	return it
}

func (p *pool) work() {
	defer p.workers.Done()
	for {
		p.mu.Lock()
		var it *item
		for !p.closed {
			if it = p.next(); it != nil {
				break
			}
			p.cond.Wait()
		}
		if p.closed {
			p.mu.Unlock()
			return
		}
		p.busy[it.job.Secret.Name] = true
		if it.isManagement() {
			p.mgmt[it.group()]++
		} else {
			p.others[it.group()]++
		}
		p.mu.Unlock()

		// Closing the engine ends the wait between attempts but not the step
		// in hand: cancelling a step midway could leave a created key that
		// no stored version names (a lost rotation until the sweep).
		res, err := p.e.RotateJob(withStop(it.ctx, p.ctx.Done()), it.job)
		rq, wait := err.(*requeue)

		p.mu.Lock()
		if !wait {
			delete(p.busy, it.job.Secret.Name)
		}
		if it.isManagement() {
			p.mgmt[it.group()]--
		} else {
			p.others[it.group()]--
		}
		p.cond.Broadcast()
		if wait {
			p.waiting.Add(1)
		}
		p.mu.Unlock()
		if wait {
			go p.requeue(it, rq)
			continue
		}
		it.done <- JobOutcome{Job: it.job, Result: res, Err: err, Index: it.idx}
	}
}

// requeue puts a job back in the queue once its wait is over (the clock is
// the engine's), keeping its secret reserved meanwhile so that no other job
// of the secret starts in between; no worker waits with it.
func (p *pool) requeue(it *item, rq *requeue) {
	defer p.waiting.Done()
	var err error
	select {
	case <-p.e.clk.After(rq.after):
	case <-p.ctx.Done():
		err = ErrClosed
	case <-it.ctx.Done():
		err = it.ctx.Err()
	}
	p.mu.Lock()
	if err == nil && p.closed {
		err = ErrClosed
	}
	if err != nil {
		delete(p.busy, it.job.Secret.Name)
		p.cond.Broadcast()
		p.mu.Unlock()
		// As a crash there would: the credential made stays unstored, and a
		// restart's replayed create adopts it.
		it.done <- JobOutcome{Job: rq.job, Result: Result{Secret: it.job.Secret.Name}, Err: stepErr(it.job.Secret.Name, "settle", err), Index: it.idx}
		return
	}
	it.job, it.holds = rq.job, true
	p.queue = append(p.queue, it)
	p.cond.Broadcast()
	p.mu.Unlock()
}

// Submit queues a job by its priority; the channel receives its outcome.
func (e *Engine) Submit(ctx context.Context, job Job) <-chan JobOutcome {
	return e.pool.submit(ctx, []Job{job})[0]
}

// submit queues jobs together, so that a batch's order rules (management
// keys last) see the whole batch.
func (p *pool) submit(ctx context.Context, jobs []Job) []<-chan JobOutcome {
	out := make([]<-chan JobOutcome, len(jobs))
	p.enqueue(ctx, jobs, func(i int) chan JobOutcome {
		ch := make(chan JobOutcome, 1)
		out[i] = ch
		return ch
	})
	return out
}

// enqueue queues the jobs; doneFor gives the channel job i's outcome goes to
// (it must have room for it: the workers never block on it).
func (p *pool) enqueue(ctx context.Context, jobs []Job, doneFor func(i int) chan JobOutcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, job := range jobs {
		it := &item{ctx: ctx, job: job, prio: PriorityOf(job), done: doneFor(i), idx: i}
		if p.closed {
			it.done <- JobOutcome{Job: job, Err: ErrClosed, Index: i}
			continue
		}
		p.seq++
		it.seq = p.seq
		p.queue = append(p.queue, it)
	}
	p.cond.Broadcast()
}

// SubmitAll queues a batch; the one channel receives every job's outcome,
// in the order they end, with JobOutcome.Index naming the job. One channel
// for the batch, not one goroutine per job, keeps a ten-thousand-secret
// slot small.
func (e *Engine) SubmitAll(ctx context.Context, jobs []Job) <-chan JobOutcome {
	out := make(chan JobOutcome, len(jobs))
	e.pool.enqueue(ctx, jobs, func(int) chan JobOutcome { return out })
	return out
}

// RunBatch queues every job and waits for all of them; outcomes come back
// in the jobs' order. progress, when set, is called after each job ends
// (from one goroutine at a time).
func (e *Engine) RunBatch(ctx context.Context, jobs []Job, progress func(Progress)) []JobOutcome {
	all := e.SubmitAll(ctx, jobs)
	out := make([]JobOutcome, len(jobs))
	pr := Progress{Total: len(jobs)}
	for range jobs {
		o := <-all
		out[o.Index] = o
		pr.Done++
		if o.Err != nil {
			pr.Failed++
		}
		pr.Last = o
		if progress != nil {
			progress(pr)
		}
	}
	return out
}

// Resume finishes every rotation in flight among the jobs' secrets (an
// AWSPENDING version that is not AWSCURRENT), as the daemon does at startup,
// with the grace of each job's cause kind (scheduled when unset). It never
// starts a new rotation: a secret with nothing in flight ends with
// NothingToResume. Jobs whose Known data shows nothing in flight cost no call.
func (e *Engine) Resume(ctx context.Context, jobs []Job, progress func(Progress)) []JobOutcome {
	var run []Job
	var idx []int
	out := make([]JobOutcome, len(jobs))
	for i, j := range jobs {
		if j.Trigger.Kind == "" {
			j.Trigger.Kind = events.CauseScheduled
		}
		if j.Trigger.Source == "" {
			j.Trigger.Source = events.SourceStartup
		}
		if j.Trigger.ID == "" {
			j.Trigger.ID = "resume"
		}
		j.resumeOnly = true
		if j.Known != nil && !inFlight(*j.Known) {
			out[i] = JobOutcome{Job: j, Result: Result{Secret: j.Secret.Name, Outcome: NothingToResume}}
			continue
		}
		run = append(run, j)
		idx = append(idx, i)
	}
	for k, o := range e.RunBatch(ctx, run, progress) {
		out[idx[k]] = o
	}
	return out
}

func inFlight(s secretstore.Secret) bool {
	p, ok := s.VersionWithStage(secretstore.StagePending)
	return ok && !p.Has(secretstore.StageCurrent)
}

type stopKey struct{}

// withStop marks ctx with the engine's closing signal: a rotation stops
// before its next attempt when it fires, and finishes the step in hand.
func withStop(ctx context.Context, stop <-chan struct{}) context.Context {
	return context.WithValue(ctx, stopKey{}, stop)
}

// inPool reports whether the rotation runs in the engine's worker pool.
func inPool(ctx context.Context) bool { return stopOf(ctx) != nil }

// stopOf returns the closing signal, or nil (never fires) outside the pool.
func stopOf(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(stopKey{}).(<-chan struct{})
	return ch
}
