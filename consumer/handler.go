package consumer

import (
	"context"
	"errors"
	"io"
	"net/http"
)

// maxDeliveryBytes bounds a delivery body; LakiConnect's events are small.
const maxDeliveryBytes = 1 << 20

// Handler receives deliveries: it verifies each one and answers 400 to what
// fails, 200 to a redelivery of one already processed (so LakiConnect stops
// sending it), and otherwise calls process and answers 200 when it returns
// nil (then the delivery is remembered) or 500 so that LakiConnect delivers
// it again. process must be quick: hand heavy work to a queue, since
// LakiConnect retries a delivery not answered within 10 s.
func (v *Verifier) Handler(process func(context.Context, Event) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDeliveryBytes))
		if err != nil {
			http.Error(w, "body unreadable or too large", http.StatusRequestEntityTooLarge)
			return
		}
		ev, err := v.Verify(r.Context(), r.Header.Get(SignatureHeader), body)
		switch {
		case errors.Is(err, ErrDuplicate):
			w.WriteHeader(http.StatusOK)
			return
		case errors.Is(err, ErrNoSecrets):
			http.Error(w, "signing secrets unavailable", http.StatusServiceUnavailable)
			return
		case err != nil:
			// The error names what failed (header, tolerance, signature,
			// merchant), never a secret.
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := process(r.Context(), ev); err != nil {
			http.Error(w, "processing failed", http.StatusInternalServerError)
			return
		}
		// Processed: answer 200 even if it cannot be remembered. A 500
		// would have LakiConnect deliver it again and process run twice;
		// the Deduper, which the caller wrote, reports its own failure.
		_ = v.Remember(r.Context(), ev)
		w.WriteHeader(http.StatusOK)
	})
}
