// The fleet run's replicas: real `lakirotator serve` processes built from
// this tree, each with its own directory, port and proxy listeners, sharing
// one DynamoDB lease in moto.

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/lakirotator/lakirotator/ha"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
)

// fleetAccount is one AWS account of the run: one LakiConnect environment,
// reached through AssumeRole into role.
type fleetAccount struct {
	env       string
	id        string
	role      string
	merchants []string          // master merchant ids, in order
	mgmt      map[string]string // master merchant id -> its management key's secret name
}

// replica is one running `serve`.
type replica struct {
	no     int
	dir    string
	url    string
	cmd    *exec.Cmd
	done   chan struct{}
	client *httpapi.Client
	killed time.Time
	mu     sync.Mutex
	peakMB float64 // VmHWM, last read while it ran
	idleMB float64
}

func (r *replica) alive() bool {
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// fleetSetup is what every replica's config shares.
type fleetSetup struct {
	binary   string
	runID    string
	moto     string // the lease goes to moto directly
	lakiURL  string // the simulator's root
	table    string
	slot     time.Time
	accounts []*fleetAccount
	proxy    *smProxy
	token    secret.Value
	workers  int
	write    float64 // client-side write rate per account
	ttl      time.Duration
	logLevel string
}

const benchPolicies = `name: %[1]s
kind: %[2]s
%[3]senvironments: [sandbox, production]
max_age: 400d
schedule: %[4]q
grace: {scheduled: 24h, personnel: 1h, compromise: 0s}
`

// writeReplicaDir writes replica no's config, policies and token.
func (s *fleetSetup) writeReplicaDir(dir string, no, port int) error {
	var envs strings.Builder
	for a, acc := range s.accounts {
		ep, err := s.proxy.listen(no, a)
		if err != nil {
			return err
		}
		fmt.Fprintf(&envs, "  %s:\n    aws: {region: %s, endpoint: %q, role_arn: %q, write_rate: %g, max_attempts: 8}\n",
			acc.env, motoserver.Region, ep, acc.role, s.write)
		fmt.Fprintf(&envs, "    lakiconnect:\n      base_url: %q\n      master_merchants:\n", s.lakiURL+"/"+acc.env+"/v1")
		for _, m := range acc.merchants {
			fmt.Fprintf(&envs, "        - id: %s\n          management_key: {secret: %q}\n", m, acc.mgmt[m])
		}
	}
	cfg := fmt.Sprintf(`version: 1
environments:
%sstore: {kind: aws}
policies_dir: policies
discovery:
  enabled: true
  refresh_interval: 1h
  tag_filters: {%q: [%q]}
engine: {workers: %d}
sweep: {schedule: "0 0 1 1 *"}
policy_scan: {schedule: "0 0 1 1 *"}
auth_watch: {poll_interval: 1h}
ha: {kind: dynamodb, table: %s, region: %s, endpoint: %q, ttl: %s}
http:
  listen: "127.0.0.1:%d"
  tokens:
    - name: lakibench
      token: {file: api-token}
audit: {file: audit.jsonl}
log: {format: json, level: %s}
`, envs.String(), runTag, s.runID, s.workers, s.table, motoserver.Region, s.moto, s.ttl, port, s.logLevel)
	slot := fmt.Sprintf("%d %d %d %d *", s.slot.Minute(), s.slot.Hour(), s.slot.Day(), int(s.slot.Month()))
	never := "0 0 1 1 *" // 1 January: no slot within the run's look-back
	files := map[string]string{
		"lakirotator.yaml":                         cfg,
		"api-token":                                s.token.Reveal() + "\n",
		"policies/bench-api-keys.yaml":             fmt.Sprintf(benchPolicies, "bench-api-keys", "api_key", "scopes: [payments:read, payments:write]\n", slot),
		"policies/bench-webhooks.yaml":             fmt.Sprintf(benchPolicies, "bench-webhooks", "webhook_secret", "", slot),
		"policies/bench-unscheduled-api-keys.yaml": fmt.Sprintf(benchPolicies, "bench-unscheduled-api-keys", "api_key", "scopes: [payments:read, payments:write]\n", never),
		"policies/bench-unscheduled-webhooks.yaml": fmt.Sprintf(benchPolicies, "bench-unscheduled-webhooks", "webhook_secret", "", never),
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// startReplica starts replica no in its own directory under root.
func (s *fleetSetup) startReplica(root string, no int) (*replica, error) {
	dir := filepath.Join(root, fmt.Sprintf("replica-%d", no))
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := s.writeReplicaDir(dir, no, port); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		return nil, err
	}
	r := &replica{no: no, dir: dir, url: fmt.Sprintf("http://127.0.0.1:%d", port), done: make(chan struct{})}
	r.cmd = exec.Command(s.binary, "serve", "--config", filepath.Join(dir, "lakirotator.yaml"))
	r.cmd.Dir = dir
	r.cmd.Env = append(motoserver.Env(), "HOME="+dir, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	r.cmd.Stdout, r.cmd.Stderr = logFile, logFile
	if err := r.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s serve: %w", s.binary, err)
	}
	go func() { _ = r.cmd.Wait(); logFile.Close(); close(r.done) }()
	r.client, err = httpapi.NewClient(r.url, s.token, nil)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// waitReady waits until the replica answers /readyz.
func (r *replica) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if !r.alive() {
			return fmt.Errorf("replica %d exited before it was ready: %s", r.no, r.logTail(5))
		}
		resp, err := http.Get(r.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("replica %d not ready after %s: %s", r.no, limit, r.logTail(5))
}

func (r *replica) logTail(n int) string {
	b, _ := os.ReadFile(filepath.Join(r.dir, "serve.log"))
	return lastLines(string(b), n)
}

// logErrors is the replica's ERROR records, at most n, one line each.
func (r *replica) logErrors(n int) (int, string) {
	b, _ := os.ReadFile(filepath.Join(r.dir, "serve.log"))
	lines := grepLines(string(b), `"level":"ERROR"`)
	if lines == "" {
		return 0, ""
	}
	return strings.Count(lines, "\n") + 1, lastLines(lines, n)
}

func (r *replica) pid() string { return strconv.Itoa(r.cmd.Process.Pid) }

// sampleMemory keeps the replica's peak (VmHWM) while it runs.
func (r *replica) sampleMemory() {
	if !r.alive() {
		return
	}
	if hwm := procStatusMB(r.pid(), "VmHWM"); hwm > 0 {
		r.mu.Lock()
		r.peakMB = max(r.peakMB, hwm)
		r.mu.Unlock()
	}
}

func (r *replica) stop() {
	if !r.alive() {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

func (r *replica) kill() {
	r.sampleMemory()
	r.killed = time.Now()
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
}

// leaseHolder reads the lease item: the holder's name and token.
func leaseHolder(ctx context.Context, c *dynamodb.Client, table string) (string, int64) {
	out, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		Key: map[string]ddbtypes.AttributeValue{"name": &ddbtypes.AttributeValueMemberS{Value: ha.DefaultName}}})
	if err != nil || out.Item == nil {
		return "", 0
	}
	var holder string
	var token int64
	if v, ok := out.Item["holder"].(*ddbtypes.AttributeValueMemberS); ok {
		holder = v.Value
	}
	if v, ok := out.Item["token"].(*ddbtypes.AttributeValueMemberN); ok {
		token, _ = strconv.ParseInt(v.Value, 10, 64)
	}
	return holder, token
}

// holderOf maps the lease's holder name (host-pid-random) to a live replica.
func holderOf(replicas []*replica, holder string) *replica {
	for _, r := range replicas {
		if r.alive() && strings.Contains(holder+"-", "-"+r.pid()+"-") {
			return r
		}
	}
	return nil
}

// triggerPatiently posts a trigger as the CLI does, but waits up to limit
// for the answer: the daemon keeps a trigger's intent on every secret
// before it answers, and the HTTP API client's 30 s can be too short for a
// large trigger while a batch holds the write quota (the run measures how
// long it takes instead of failing).
func (r *replica) triggerPatiently(ctx context.Context, token secret.Value, req httpapi.TriggerRequest, limit time.Duration) (httpapi.TriggerStatus, error) {
	var st httpapi.TriggerStatus
	body, err := json.Marshal(req)
	if err != nil {
		return st, err
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url+"/v1/triggers", bytes.NewReader(body))
	if err != nil {
		return st, err
	}
	hr.Header.Set("Authorization", "Bearer "+token.Reveal())
	hr.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return st, fmt.Errorf("POST /v1/triggers to replica %d: %w", r.no, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return st, err
	}
	if resp.StatusCode >= 300 {
		return st, fmt.Errorf("POST /v1/triggers to replica %d: %s: %s", r.no, resp.Status, strings.TrimSpace(string(data)))
	}
	return st, json.Unmarshal(data, &st)
}
