// The run loop: serving, the daemon, the scheduled loops, orderly shutdown.

package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/lakirotator/lakirotator/rotator/schedule"
)

// Run serves the HTTP API and runs the daemon until ctx ends, then shuts
// down in order: stop taking requests, finish the rotations in hand, flush
// notifications and audit.
func (s *Service) Run(ctx context.Context, ln net.Listener) error {
	rctx, cancelReceivers := context.WithCancel(context.Background())
	metricsDone, err := s.serveMetrics(rctx)
	if err != nil {
		cancelReceivers()
		return err
	}
	srv := &http.Server{Handler: s.Handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second}
	tlsCfg := s.cfg.HTTP.TLS
	serveErr := make(chan error, 1)
	go func() {
		var err error
		if tlsCfg.Enabled() {
			srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			if pool := tlsCfg.ClientCAs(); pool != nil {
				// A certificate is verified when given; the API then
				// refuses a request that has neither an allow-listed
				// certificate nor a token (a token holder may have none).
				srv.TLSConfig.ClientCAs = pool
				srv.TLSConfig.ClientAuth = tls.VerifyClientCertIfGiven
			}
			err = srv.ServeTLS(ln, tlsCfg.CertFile, tlsCfg.KeyFile)
		} else {
			err = srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
		}
		close(serveErr)
	}()
	for _, r := range s.receivers {
		go r.Run(rctx)
	}
	refusalsDone := make(chan struct{})
	go func() { defer close(refusalsDone); s.refusals.Run(rctx) }()
	go s.ready.Run(rctx)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	daemonErr := make(chan error, 1)
	go func() { daemonErr <- s.Daemon.Run(runCtx) }()
	loops := s.startLoops(runCtx)
	s.startAuditLoops(runCtx, loops)

	select {
	case err = <-daemonErr:
		cancel()
	case err = <-serveErr:
		cancel()
		<-daemonErr
	}
	loops.Wait()
	shutdown, done := context.WithTimeout(context.Background(), 30*time.Second)
	defer done()
	if err := srv.Shutdown(shutdown); err != nil {
		// Requests still open after the wait are cut; say so.
		s.log.Warn("HTTP API shutdown cut short", "err", err)
	}
	cancelReceivers()
	<-refusalsDone // the last summaries reach the audit before it closes
	<-metricsDone
	if cerr := s.Close(shutdown); err == nil {
		err = cerr
	}
	return err
}

// Close flushes notifications and closes the audit file.
func (s *Service) Close(ctx context.Context) error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.closers = nil
	return errors.Join(errs...)
}

// Shutdown stops the engines (finishing rotations in hand) and closes the
// sinks; for one-shot CLI use, where Run was never called.
func (s *Service) Shutdown(ctx context.Context) error {
	s.Daemon.stopPausedRotations()
	for _, env := range s.Envs {
		env.Engine.Close()
	}
	s.Daemon.wg.Wait()
	return s.Close(ctx)
}

// startLoops runs the orphan sweep and the policy scan on their schedules
// and the 401/403 watch on its interval, until ctx ends.
func (s *Service) startLoops(ctx context.Context) *sync.WaitGroup {
	var wg sync.WaitGroup
	d := s.Daemon
	var plans []schedule.Plan
	fire := map[string]func(context.Context){}
	if sch := s.cfg.Sweep.Cron(); sch != nil {
		plans = append(plans, schedule.Plan{Name: "sweep", Schedule: sch})
		fire["sweep"] = func(ctx context.Context) {
			ctx, ok := d.asHolder(ctx, "orphan sweep")
			if !ok {
				return
			}
			if _, err := d.Sweep(ctx); err != nil {
				s.log.Error("orphan sweep failed", "err", err)
			}
		}
	}
	if sch := s.cfg.PolicyScan.Cron(); sch != nil {
		plans = append(plans, schedule.Plan{Name: "policy-scan", Schedule: sch})
		fire["policy-scan"] = func(ctx context.Context) {
			ctx, ok := d.asHolder(ctx, "policy scan")
			if !ok {
				return
			}
			if _, err := s.Scans.monitor.ScanOnce(ctx); err != nil {
				s.log.Error("policy scan failed", "err", err)
			}
		}
	}
	if len(plans) > 0 {
		sched := &schedule.Scheduler{Clock: d.clock, Plans: plans, Fire: func(ctx context.Context, f schedule.Firing) { fire[f.Plan](ctx) }}
		wg.Add(1)
		go func() { defer wg.Done(); sched.Run(ctx) }()
	}
	if every := s.cfg.AuthWatch.PollInterval.Std(); every > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.every(ctx, every, func(ctx context.Context) {
				ctx, ok := d.asHolder(ctx, "401/403 watch")
				if !ok {
					return
				}
				idx, err := d.readKeyIndex(ctx)
				if err != nil {
					s.log.Error("401/403 watch: reading the managed keys failed", "err", err)
					return
				}
				s.Scans.remember(idx)
				s.Scans.watcher.Poll(ctx)
			})
		}()
	}
	return &wg
}
