// The counting proxy of the fleet run: every replica reaches each account's
// Secrets Manager through a listener of its own, so every call is counted
// by replica, account and operation, whichever process made it (moto keeps
// no count of its own), and every write that landed is kept per secret.

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/lakirotator/lakirotator/providers/secretsmanager"
)

// smProxy forwards to moto and counts. With a stand-in it also answers
// ThrottlingException above the write quota per account, as AWS does
// (awsfault does the same in process for the single-engine run).
type smProxy struct {
	target  *url.URL
	classOf map[string]string     // managed secret name -> class; set before any replica starts, read only
	standIn map[int]*rate.Limiter // account index -> AWS's write quota

	mu        sync.Mutex
	calls     map[callKey]int
	injected  int
	secrets   map[string]*secretWrites // secret name -> what landed
	firstPut  time.Time
	listeners []*http.Server
}

type callKey struct {
	replica, account int
	op               string // operation/result
	class            string // the class of the secret named (classBatch...); "" for others (listings, management keys)
}

// Classes of the run's managed secrets: each is counted apart, since a
// trigger's rotation spends more than a slot's (its durable intent).
const (
	classBatch   = "slot batch"
	classOwner   = "personnel"
	classExposed = "compromise"
)

// secretWrites is what the proxy saw land on one secret: the versions put
// and the versions made AWSCURRENT, each with when and by which replica.
type secretWrites struct {
	puts     map[string]bool
	promoted []promotion
}

type promotion struct {
	version string
	at      time.Time
	replica int
}

func newSMProxy(target string, classOf map[string]string, accounts int, writeQuota float64, standIn bool) (*smProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	p := &smProxy{target: u, classOf: classOf, calls: map[callKey]int{}, secrets: map[string]*secretWrites{}}
	if standIn {
		p.standIn = map[int]*rate.Limiter{}
		for a := range accounts {
			p.standIn[a] = rate.NewLimiter(rate.Limit(writeQuota), int(writeQuota))
		}
	}
	return p, nil
}

// listen opens the listener replica uses for account; it returns its URL.
func (p *smProxy) listen(replica, account int) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	rp := httputil.NewSingleHostReverseProxy(p.target)
	// A killed replica's calls end mid-way; that is the run, not news.
	rp.ErrorLog = log.New(io.Discard, "", 0)
	srv := &http.Server{ReadHeaderTimeout: 30 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.serve(rp, replica, account, w, r)
	})}
	p.mu.Lock()
	p.listeners = append(p.listeners, srv)
	p.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

func (p *smProxy) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.listeners {
		_ = s.Close()
	}
}

// smRequest is the part of a Secrets Manager request the proxy reads.
type smRequest struct {
	SecretId           string
	ClientRequestToken string
	VersionId          string
	VersionStage       string
	MoveToVersionId    string
}

func (p *smProxy) serve(rp *httputil.ReverseProxy, replica, account int, w http.ResponseWriter, r *http.Request) {
	op, isSM := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "secretsmanager.")
	if !isSM { // STS (AssumeRole, GetCallerIdentity): forwarded, not counted
		rp.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var in smRequest
	_ = json.Unmarshal(body, &in)
	write := secretsmanager.IsWrite(op)
	if write && p.standIn != nil && !p.standIn[account].Allow() {
		p.mu.Lock()
		p.calls[callKey{replica, account, op + "/ThrottlingException", p.classOf[in.SecretId]}]++
		p.injected++
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-Errortype", "ThrottlingException")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"ThrottlingException","message":"Rate exceeded"}`))
		return
	}
	// moto's answer is awaited even when the replica is gone (killed
	// mid-call): what landed is what the run checks, whoever hears of it.
	r = r.WithContext(context.WithoutCancel(r.Context()))
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	// Recorded in a defer: the reverse proxy aborts (panics) when the
	// answer cannot be copied to a replica that died, after moto answered.
	defer p.record(replica, account, op, in, sw)
	rp.ServeHTTP(sw, r)
}

func (p *smProxy) record(replica, account int, op string, in smRequest, sw *statusWriter) {
	now := time.Now()
	result := "ok"
	if sw.status != http.StatusOK {
		result = fmt.Sprint(sw.status)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	label := op
	if op == "GetSecretValue" && in.VersionId != "" {
		// One version by id, not AWSCURRENT: mostly the retire pass reading
		// an old credential in grace (every 5 minutes per secret in grace),
		// or a resumed rotation reading its pending version. Counted apart.
		label = opReadByID
	}
	p.calls[callKey{replica, account, label + "/" + result, p.classOf[in.SecretId]}]++
	if !secretsmanager.IsWrite(op) || sw.status != http.StatusOK || in.SecretId == "" {
		return
	}
	s := p.secrets[in.SecretId]
	if s == nil {
		s = &secretWrites{puts: map[string]bool{}}
		p.secrets[in.SecretId] = s
	}
	switch {
	case op == "PutSecretValue":
		s.puts[in.ClientRequestToken] = true
		if p.firstPut.IsZero() {
			p.firstPut = now
		}
	case op == "UpdateSecretVersionStage" && in.VersionStage == "AWSCURRENT" && in.MoveToVersionId != "":
		for _, pr := range s.promoted {
			if pr.version == in.MoveToVersionId {
				return // the same promote again (a retry, a late writer): no new rotation
			}
		}
		s.promoted = append(s.promoted, promotion{version: in.MoveToVersionId, at: now, replica: replica})
	}
}

// opReadByID labels GetSecretValue of a version id in the counts.
const opReadByID = "GetSecretValue(version id)"

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// promotedView is a copy of what landed, for the run's checks.
type promotedView struct {
	firstPut time.Time
	secrets  map[string]secretWrites
}

func (p *smProxy) view() promotedView {
	p.mu.Lock()
	defer p.mu.Unlock()
	v := promotedView{firstPut: p.firstPut, secrets: make(map[string]secretWrites, len(p.secrets))}
	for name, s := range p.secrets {
		v.secrets[name] = secretWrites{puts: s.puts, promoted: append([]promotion(nil), s.promoted...)}
	}
	return v
}

// promotedCount counts the secrets among names with at least one new
// version made AWSCURRENT (cheap enough to poll).
func (p *smProxy) promotedCount(names []string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, name := range names {
		if s := p.secrets[name]; s != nil && len(s.promoted) > 0 {
			n++
		}
	}
	return n
}

// firstPromoteAfter is the first promotion among names by a replica other
// than not, after t; zero if none yet.
func (p *smProxy) firstPromoteAfter(names map[string]bool, not int, t time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	var first time.Time
	for name := range names {
		s := p.secrets[name]
		if s == nil {
			continue
		}
		for _, pr := range s.promoted {
			if pr.replica != not && pr.at.After(t) && (first.IsZero() || pr.at.Before(first)) {
				first = pr.at
			}
		}
	}
	return first
}

func (p *smProxy) snapshot() (map[callKey]int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[callKey]int, len(p.calls))
	for k, v := range p.calls {
		out[k] = v
	}
	return out, p.injected
}
