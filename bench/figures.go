// The arithmetic from what a run counted to the report's figures.

package bench

import (
	"strings"
	"time"

	"github.com/lakirotator/lakirotator/providers/secretsmanager"
	"github.com/lakirotator/lakirotator/rotator"
)

// fillRotationFigures counts outcomes, checks each secret was rotated
// exactly once and sets the throughput figures. The exposed key's
// compromise rotation is not among the outcomes: exposeAndWait checked it.
func (rep *Report) fillRotationFigures(all []rotator.JobOutcome, exposedName string, n int, wall time.Duration) {
	rotatedBy := map[string]int{}
	for _, o := range all {
		if o.Err != nil {
			rep.Failed++
			if rep.FirstFailure == "" {
				rep.FirstFailure = o.Err.Error()
			}
			continue
		}
		rep.Rotated++
		rotatedBy[o.Job.Secret.Name]++
	}
	rep.Rotated++
	rotatedBy[exposedName]++
	rep.RotationsOnce = len(rotatedBy) == n
	for _, c := range rotatedBy {
		rep.RotationsOnce = rep.RotationsOnce && c == 1
	}
	rep.WallSeconds = wall.Seconds()
	rep.RotationsPerSec = float64(rep.Rotated) / wall.Seconds()
	rep.FractionOfBound = rep.RotationsPerSec / rep.QuotaBoundPerSec
}

// fillCallFigures turns the store's and the LakiConnect client's counters,
// less what they held before the rotations, into calls per rotation.
func (rep *Report) fillCallFigures(smNow, smBefore, lakiNow, lakiBefore map[string]int) {
	rep.SMCalls = map[string]int{}
	total, wr := 0, 0
	for k, v := range smNow {
		d := v - smBefore[k]
		if d == 0 {
			continue
		}
		op, result, _ := strings.Cut(k, "/")
		rep.SMCalls[op] += d
		total += d
		if secretsmanager.IsWrite(op) {
			wr += d
		}
		if isThrottle(result) {
			rep.ThrottlesSurfaced += d
		}
	}
	rep.SMCallsPerRot = float64(total) / float64(rep.Rotated)
	rep.SMWritesPerRot = float64(wr) / float64(rep.Rotated)
	rep.LakiCalls = map[string]int{}
	lakiTotal := 0
	for k, v := range lakiNow {
		if d := v - lakiBefore[k]; d > 0 {
			if strings.HasSuffix(k, " 429") {
				rep.Laki429 += d
				continue
			}
			rep.LakiCalls[strings.TrimSuffix(k, " ok")] += d
			lakiTotal += d
		}
	}
	rep.LakiCallsPerRot = float64(lakiTotal) / float64(rep.Rotated)
}
