// What the fleet run does while the replicas rotate: it follows the batch
// through the proxy, raises the exposure and the owner's departure, kills
// the lease holder, and samples memory and CPU.

package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/laki"
)

// fleetStall ends a run whose rotations stopped advancing: what is left is lost.
const fleetStall = 5 * time.Minute

type fleetWatch struct {
	cfg      Config
	rep      *FleetReport
	proxy    *smProxy
	replicas []*replica
	ddb      *dynamodb.Client
	table    string
	sim      *separateProcess
	token    secret.Value

	all, batch, owned []string
	exposed           string
	exposedKey        string
	exposedMerchant   string

	simPID, motoPID string
	start, end      time.Time
	cpuStart        map[string]int64 // pid -> ticks at the start
	ownerAsked      time.Time
	exposeOver      atomic.Bool // the exposed key is revoked (or its wait failed)
	ownerOver       atomic.Bool // the owner's secrets are rotated (or the wait failed)
	killedName      string
	killed          *replica
	errs            []error
	mu              sync.Mutex
}

func (w *fleetWatch) failed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.errs) > 0
}

func (w *fleetWatch) fail(err error) {
	w.mu.Lock()
	w.errs = append(w.errs, err)
	w.mu.Unlock()
}

// holder is the replica holding the lease now, nil if none.
func (w *fleetWatch) holder(ctx context.Context) (*replica, string) {
	name, _ := leaseHolder(ctx, w.ddb, w.table)
	return holderOf(w.replicas, name), name
}

// other is a live replica that is not r (r itself when alone).
func (w *fleetWatch) other(r *replica) *replica {
	for _, o := range w.replicas {
		if o != r && o.alive() {
			return o
		}
	}
	return r
}

func (w *fleetWatch) run(ctx context.Context) error {
	cfg, rep := w.cfg, w.rep
	var wg sync.WaitGroup
	defer wg.Wait()
	exposeAt := max(1, len(w.batch)/10)
	ownerAt := max(2, len(w.batch)/5)
	killAt := int(cfg.KillLeaderAt * float64(len(w.batch)))
	exposedDone, ownerDone, killDone := false, len(w.owned) == 0, cfg.KillLeaderAt == 0
	lastProgress, lastDone := time.Now(), -1
	lastReport := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		for _, r := range w.replicas {
			r.sampleMemory()
		}
		if w.start.IsZero() {
			if first := w.proxy.view().firstPut; !first.IsZero() {
				w.start = first
				w.cpuStart = w.cpuNow()
				rep.LoadAtStart = loadAverage()
				cfg.Progress("the slot's rotations started")
			}
			continue
		}
		done := w.proxy.promotedCount(w.batch)
		total := w.proxy.promotedCount(w.all)
		if total != lastDone {
			lastDone, lastProgress = total, time.Now()
		}
		if !exposedDone && done >= exposeAt {
			exposedDone = true
			rep.ExposedAtDone = done
			wg.Add(1)
			go func() { defer wg.Done(); w.expose(ctx) }()
		}
		if !ownerDone && done >= ownerAt {
			ownerDone = true
			rep.OwnerStartedAtDone = done
			wg.Add(1)
			go func() { defer wg.Done(); w.personnel(ctx) }()
		}
		// The kill waits for the emergencies to be over, so that the
		// failover figures are the batch's: a trigger the holder kept when
		// it was killed is resumed by the next holder, after following the
		// dead writer (rotator.follow: up to 20 s per secret), which would
		// hide the batch's gap (RESULTS.md has such a run).
		over := (!exposedDone || w.exposeOver.Load()) && (len(w.owned) == 0 || !ownerDone || w.ownerOver.Load())
		if !killDone && done >= killAt && over {
			killDone = true
			if err := w.killHolder(ctx, done, &wg); err != nil {
				return err
			}
		}
		if time.Since(lastReport) > 10*time.Second {
			lastReport = time.Now()
			cfg.Progress("%d/%d batch rotations done, %d/%d in all, %.1f/s", done, len(w.batch), total, len(w.all), float64(total)/time.Since(w.start).Seconds())
		}
		if total == len(w.all) && exposedDone && ownerDone && killDone {
			break
		}
		if w.failed() {
			break
		}
		if time.Since(lastProgress) > fleetStall {
			rep.Note = fmt.Sprintf("rotations stopped advancing for %s at %d of %d", fleetStall, total, len(w.all))
			break
		}
	}
	w.end = w.lastPromote()
	rep.CPUPercent = w.cpuShares()
	wg.Wait()
	if len(w.errs) > 0 {
		return w.errs[0]
	}
	return nil
}

func (w *fleetWatch) lastPromote() time.Time {
	var last time.Time
	for _, s := range w.proxy.view().secrets {
		for _, p := range s.promoted {
			if p.at.After(last) {
				last = p.at
			}
		}
	}
	return last
}

// expose raises api_key.exposed at LakiConnect and hands the compromise to
// a replica that does not hold the lease (what the security-event receiver
// of any replica does), then waits for the key's revocation.
func (w *fleetWatch) expose(ctx context.Context) {
	defer w.exposeOver.Store(true)
	h, _ := w.holder(ctx)
	to := w.other(h)
	if to == nil {
		to = w.replicas[0]
	}
	w.rep.ExposedSentTo = to.no
	w.rep.ExposedToHolder = to == h
	start := time.Now()
	evID, err := w.sim.ExposeKey(ctx, w.exposedKey)
	if err != nil {
		w.fail(err)
		return
	}
	if _, err := to.client.Trigger(ctx, httpapi.TriggerRequest{Secret: w.exposed, Cause: events.CauseCompromise,
		Reason: "api_key.exposed " + evID, Requester: "lakibench"}); err != nil {
		w.fail(fmt.Errorf("bench: compromise trigger to replica %d: %w", to.no, err))
		return
	}
	for {
		st, err := w.sim.KeyStatus(ctx, w.exposedMerchant, w.exposedKey)
		if err == nil && st == laki.StatusRevoked {
			w.rep.ExposedToRevokedMillis = ms(time.Since(start))
			return
		}
		if time.Since(start) > 2*time.Minute {
			w.fail(fmt.Errorf("bench: exposed key of %s not revoked after 2 minutes (status %q, %v)", w.exposed, st, err))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// personnel asks one replica (the holder, or another with -personnel-to
// other) to rotate every secret of the owner, and waits until the proxy has
// seen each of them made AWSCURRENT anew.
func (w *fleetWatch) personnel(ctx context.Context) {
	defer w.ownerOver.Store(true)
	h, _ := w.holder(ctx)
	to := h
	if w.cfg.PersonnelTo == PersonnelToOther || to == nil {
		to = w.other(h)
	}
	w.rep.OwnerSentTo = to.no
	w.rep.OwnerToHolder = to == h
	w.ownerAsked = time.Now()
	st, err := to.triggerPatiently(ctx, w.token, httpapi.TriggerRequest{Owner: OwnerName, Cause: events.CausePersonnel,
		Reason: "owner left", Requester: "lakibench"}, fleetStall)
	w.rep.OwnerAcceptSeconds = time.Since(w.ownerAsked).Seconds()
	if err != nil {
		// The daemon answers once every intent is kept; its API server
		// drops answers later than its write timeout (60 s) while the
		// trigger goes on. Whether it went on is what the proxy sees.
		w.mu.Lock()
		w.rep.Note = strings.TrimSpace(w.rep.Note + fmt.Sprintf(" personnel trigger: no answer after %.1f s (%v);", w.rep.OwnerAcceptSeconds, err))
		w.mu.Unlock()
	}
	for w.proxy.promotedCount(w.owned) < len(w.owned) {
		if time.Since(w.ownerAsked) > 2*fleetStall {
			w.fail(fmt.Errorf("bench: the owner's %d secrets: %d rotated after %s", len(w.owned), w.proxy.promotedCount(w.owned), fleetStall))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	if fin, err := to.client.TriggerStatus(ctx, st.ID); err == nil && st.ID != "" {
		w.rep.OwnerTriggerState = fin.State
	}
}

// killHolder SIGKILLs the lease holder, then follows the takeover in the
// background: when another replica holds the lease, and when the batch's
// rotations resume from another replica.
func (w *fleetWatch) killHolder(ctx context.Context, done int, wg *sync.WaitGroup) error {
	h, name := w.holder(ctx)
	if h == nil {
		return fmt.Errorf("bench: no live replica holds the lease (holder %q) at %d rotations, so none can be killed", name, done)
	}
	h.kill()
	w.killed, w.killedName = h, name
	w.rep.KilledReplica, w.rep.KilledAtDone = h.no, done
	w.cfg.Progress("killed the lease holder, replica %d, at %d of %d", h.no, done, len(w.batch))
	batch := map[string]bool{}
	for _, n := range w.batch {
		batch[n] = true
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for time.Since(h.killed) < 5*time.Minute {
			if w.rep.LeaseTakenAfterSeconds == 0 {
				if name, _ := leaseHolder(ctx, w.ddb, w.table); name != "" && name != w.killedName {
					w.rep.LeaseTakenAfterSeconds = time.Since(h.killed).Seconds()
				}
			}
			if w.rep.LeaseTakenAfterSeconds > 0 {
				if first := w.proxy.firstPromoteAfter(batch, h.no, h.killed); !first.IsZero() {
					w.rep.ResumedAfterSeconds = first.Sub(h.killed).Seconds()
					return
				}
				if w.proxy.promotedCount(w.batch) == len(w.batch) {
					return // nothing of the batch was left to resume
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return nil
}

// cpuNow reads the CPU time of every process of the run.
func (w *fleetWatch) cpuNow() map[string]int64 {
	out := map[string]int64{"self": cpuTicks("self"), w.simPID: cpuTicks(w.simPID)}
	if w.motoPID != "" {
		out[w.motoPID] = cpuTicks(w.motoPID)
	}
	for _, r := range w.replicas {
		if r.alive() {
			out[r.pid()] = cpuTicks(r.pid())
		}
	}
	return out
}

// cpuShares is each process's share of a core over the rotations (a killed
// replica's is not known: it ended before the reading).
func (w *fleetWatch) cpuShares() map[string]float64 {
	now := w.cpuNow()
	secs := time.Since(w.start).Seconds()
	out := map[string]float64{}
	name := map[string]string{"self": "lakibench (proxy, watch)", w.simPID: "LakiConnect simulator"}
	if w.motoPID != "" {
		name[w.motoPID] = "moto_server"
	}
	for _, r := range w.replicas {
		name[r.pid()] = "replica " + strconv.Itoa(r.no)
	}
	for pid, before := range w.cpuStart {
		if after, ok := now[pid]; ok && after >= 0 {
			out[name[pid]] = cpuPercent(before, after, secs)
		}
	}
	return out
}

// idleMemory waits, after the batch, until every live replica's resident
// memory holds still (at most idleMaxWait), and keeps it.
func (w *fleetWatch) idleMemory(ctx context.Context) {
	samples := map[int][]float64{}
	start := time.Now()
	for {
		settled := true
		for _, r := range w.replicas {
			if !r.alive() {
				continue
			}
			r.sampleMemory()
			samples[r.no] = append(samples[r.no], procStatusMB(r.pid(), "VmRSS"))
			settled = settled && stable(samples[r.no])
		}
		if settled && time.Since(start) >= idleMinWait || time.Since(start) >= idleMaxWait {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	for _, r := range w.replicas {
		if s := samples[r.no]; len(s) > 0 {
			r.idleMB = s[len(s)-1]
		}
	}
}

// missing names up to n secrets not yet made AWSCURRENT anew, and how many.
func (w *fleetWatch) missing(n int) string {
	v := w.proxy.view()
	var names []string
	count := 0
	for _, name := range w.all {
		if len(v.secrets[name].promoted) == 0 {
			count++
			if len(names) < n {
				names = append(names, name)
			}
		}
	}
	return fmt.Sprintf("%d, %s", count, strings.Join(names, " "))
}
