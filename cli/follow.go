package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/trigger"
)

// follow polls a trigger until it has finished, or until every secret has
// either ended or failed and is being retried: an emergency is acted on
// until done (the daemon retries it with escalating alerts), so a secret
// that cannot rotate now would keep the command waiting forever. The
// caller reports the retried ones and exits non-zero.
func follow(ctx context.Context, get func(context.Context) (httpapi.TriggerStatus, error), every time.Duration, progress func(httpapi.TriggerStatus)) (httpapi.TriggerStatus, error) {
	var report func(settling)
	if progress != nil {
		report = func(st settling) { progress(st.TriggerStatus) }
	}
	st, err := trigger.Follow(ctx, every, func(ctx context.Context) (settling, error) {
		st, err := get(ctx)
		return settling{st}, err
	}, report)
	return st.TriggerStatus, err
}

// settling is a status that counts as finished once it has settled.
type settling struct{ httpapi.TriggerStatus }

func (s settling) Finished() bool { return s.TriggerStatus.Finished() || settled(s.TriggerStatus) }

// settled: every secret has ended, or failed at least once and is retried.
func settled(st httpapi.TriggerStatus) bool {
	if len(st.Secrets) < st.Total || st.Total == 0 {
		return false
	}
	for _, s := range st.Secrets {
		if !ended(s) && !retrying(s) {
			return false
		}
	}
	return true
}

func ended(s httpapi.SecretProgress) bool {
	return s.State == httpapi.StateSucceeded || s.State == httpapi.StateFailed
}

func retrying(s httpapi.SecretProgress) bool {
	return !ended(s) && s.Error != ""
}

// retried counts the secrets of a trigger that failed and are retried.
func retried(st httpapi.TriggerStatus) int {
	n := 0
	for _, s := range st.Secrets {
		if retrying(s) {
			n++
		}
	}
	return n
}

func retryNote(local bool) string {
	if local {
		return "this process stops retrying when it exits; the intent is kept in the store, and a running daemon (or its next start) finishes it"
	}
	return "the daemon keeps retrying until done, with escalating alerts; follow it with `lakirotator status`"
}

func retryErr(st httpapi.TriggerStatus, local bool) error {
	return withCode(ExitFailure, fmt.Errorf("%d of %d rotations failed and are retried: %s", retried(st), st.Total, retryNote(local)))
}
