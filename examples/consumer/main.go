// Command consumer is an application that uses LakiConnect credentials the
// rotator manages: it calls LakiConnect with the current API key and
// receives webhooks verified against every live signing secret, so that
// rotations cost it nothing.
//
//	consumer -api-key-secret payments/production/checkout-api-key \
//	         -webhook-secret payments/production/checkout-webhook \
//	         -lakiconnect https://api.lakiconnect.example/v1 -listen :8443
//
// AWS credentials and region come from the SDK's default chain.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/lakirotator/lakirotator/consumer"
	"github.com/lakirotator/lakirotator/internal/endpoint"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}

func run() error {
	apiKeySecret := flag.String("api-key-secret", "", "Secrets Manager secret holding the API key")
	webhookSecret := flag.String("webhook-secret", "", "Secrets Manager secret holding the endpoint's signing secret")
	baseURL := flag.String("lakiconnect", "", "LakiConnect base URL, ending in /v1")
	listen := flag.String("listen", "127.0.0.1:8080", "address for webhook deliveries (put TLS in front)")
	every := flag.Duration("every", time.Minute, "how often to call /whoami")
	flag.Parse()
	if *apiKeySecret == "" || *webhookSecret == "" || *baseURL == "" {
		flag.Usage()
		return errors.New("-api-key-secret, -webhook-secret and -lakiconnect are required")
	}
	if _, err := endpoint.Parse(*baseURL); err != nil {
		return fmt.Errorf("-lakiconnect %q: LakiConnect is called over https only (http to loopback for a simulator): %w", *baseURL, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))

	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	sm := secretsmanager.NewFromConfig(cfg)
	key, err := consumer.NewAPIKey(sm, *apiKeySecret, consumer.APIKeyOptions{})
	if err != nil {
		return err
	}
	verifier, err := consumer.NewVerifier(sm, *webhookSecret, consumer.VerifierOptions{
		Dedup: consumer.NewMemoryDeduper(24*time.Hour, nil), PreviousGrace: 24 * time.Hour})
	if err != nil {
		return err
	}
	lakiconnect := &http.Client{Transport: key.Transport(nil), Timeout: 10 * time.Second}

	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/lakiconnect", verifier.Handler(func(ctx context.Context, ev consumer.Event) error {
		log.Info("event received", "type", ev.Type, "id", ev.ID) // hand real work to a queue
		return nil
	}))
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	go callLoop(ctx, log, lakiconnect, *baseURL, *every)
	log.Info("receiving webhooks", "listen", *listen)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// callLoop calls /whoami; the transport adds the current key and, after a
// rotation ended the key in hand, re-reads it and retries once.
func callLoop(ctx context.Context, log *slog.Logger, c *http.Client, base string, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/whoami", nil)
		if err != nil {
			log.Error("whoami request", "error", err)
			return
		}
		resp, err := c.Do(req)
		if err != nil {
			log.Warn("whoami failed", "error", err)
		} else {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			log.Info("whoami", "status", resp.StatusCode)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
