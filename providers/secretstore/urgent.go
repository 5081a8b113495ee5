package secretstore

import "context"

type urgentKey struct{}

// WithUrgent marks the calls made with ctx as an emergency's (a compromise,
// a personnel change, the intents they keep): a store that queues its calls
// behind a client-side quota lets them go ahead of routine work, so that an
// emergency is not held behind a batch's writes.
func WithUrgent(ctx context.Context) context.Context {
	return context.WithValue(ctx, urgentKey{}, true)
}

// Urgent reports whether ctx was marked by WithUrgent.
func Urgent(ctx context.Context) bool {
	u, _ := ctx.Value(urgentKey{}).(bool)
	return u
}
