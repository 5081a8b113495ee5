// How the discovered secrets get into moto: their names and credentials,
// seeded by the API or inside moto's own process (motoseed.py).

package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// discoverySpec is one secret to seed, as motoseed.py reads it.
type discoverySpec struct {
	Name  string            `json:"name"`
	Value string            `json:"value"`
	Tags  map[string]string `json:"tags"`
}

func discoveryName(runID string, i int) string {
	label := "wh"
	if i%apiKeyShare == 0 {
		label = "ak"
	}
	return fmt.Sprintf("bench/%s/%s-%06d", runID, label, i)
}

// discoveryCredential is a steady-state secret: one version, AWSCURRENT, a
// credential of the right shape with a random value (serve never reads it:
// the test of that is the call count). One in ten is an API key, the rest
// webhook signing secrets, as in the rotation benchmark.
func discoveryCredential(runID, merchantID string, i int, name string, seeded func(secret.Value)) (discoverySpec, error) {
	value := secret.New(randomHex(24))
	if seeded != nil {
		seeded(value)
	}
	tags := map[string]string{
		inventory.TagManaged: "true", inventory.TagEnvironment: string(laki.Sandbox), inventory.TagMasterMerchant: merchantID,
		runTag: runID,
	}
	c := secretstore.Credential{Environment: string(laki.Sandbox), MasterMerchantID: merchantID, Secret: value, CreatedAt: time.Now().UTC()}
	if i%apiKeyShare == 0 {
		c.Type, c.KeyID = secretstore.TypeAPIKey, fmt.Sprintf("%s%024d", laki.KeyIDPrefix, i)
		tags[inventory.TagKind], tags[inventory.TagPolicy] = string(inventory.KindAPIKey), policyFor(inventory.KindAPIKey, false)
	} else {
		endpoint := fmt.Sprintf("%s%024d", laki.EndpointIDPrefix, i)
		c.Type, c.EndpointID, c.SecretID = secretstore.TypeWebhookSecret, endpoint, fmt.Sprintf("%s%024d", laki.WebhookSecretIDPrefix, i)
		tags[inventory.TagKind], tags[inventory.TagPolicy], tags[inventory.TagEndpointID] = string(inventory.KindWebhookSecret), policyFor(inventory.KindWebhookSecret, false), endpoint
	}
	v, err := c.Encode()
	if err != nil {
		return discoverySpec{}, fmt.Errorf("%s: %w", name, err)
	}
	return discoverySpec{Name: name, Value: v.Reveal(), Tags: tags}, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func smClient(endpoint string) *sm.Client {
	return sm.New(sm.Options{Region: motoserver.Region, BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(motoserver.AccessKeyID, motoserver.SecretAccessKey, "")})
}

func seedByAPI(ctx context.Context, c *sm.Client, specs <-chan discoverySpec, n int) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		made int
	)
	for range 4 * seedWorkers {
		wg.Go(func() {
			for s := range specs {
				in := &sm.CreateSecretInput{Name: aws.String(s.Name), SecretString: aws.String(s.Value)}
				for k, v := range s.Tags {
					in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
				}
				_, err := c.CreateSecret(ctx, in)
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("CreateSecret %s: %w", s.Name, err))
				} else {
					made++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("seeding %d secrets: %d failed, first: %w", n, len(errs), errs[0])
	}
	if made != n {
		return fmt.Errorf("seeding: made %d of %d secrets", made, n)
	}
	return nil
}

// seededMoto is motoseed.py serving the seeded secrets.
type seededMoto struct {
	endpoint string
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	done     chan struct{}
}

func startSeededMoto(ctx context.Context, python string, cacheListing bool, specs <-chan discoverySpec, n int) (*seededMoto, error) {
	dir, err := os.MkdirTemp("", "lakibench-moto-")
	if err != nil {
		return nil, err
	}
	script := filepath.Join(dir, "motoseed.py")
	if err := os.WriteFile(script, []byte(motoSeedScript), 0o600); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{script, "--port", strconv.Itoa(port), "--region", motoserver.Region}
	if cacheListing {
		args = append(args, "--cache-listing")
	}
	cmd := exec.Command(python, args...)
	cmd.Env = append(os.Environ(), motoserver.Env()...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &lockedWriter{w: &stderr}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (direct seeding needs the Python that runs moto_server; -discovery-python names it): %w", python, err)
	}
	m := &seededMoto{endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, stdin: stdin, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); os.RemoveAll(dir); close(m.done) }()
	w := bufio.NewWriterSize(stdin, 1<<20)
	enc := json.NewEncoder(w)
	sent := 0
	for s := range specs {
		if err := enc.Encode(s); err != nil {
			m.stop()
			return nil, fmt.Errorf("seeding moto (%s): %w: %s", python, err, lastLines(cmd.Stderr.(*lockedWriter).String(), 5))
		}
		sent++
	}
	if sent != n {
		m.stop()
		return nil, fmt.Errorf("seeding: made %d of %d secrets", sent, n)
	}
	if _, err := w.WriteString("END\n"); err != nil || w.Flush() != nil {
		m.stop()
		return nil, fmt.Errorf("seeding moto (%s): %s", python, lastLines(cmd.Stderr.(*lockedWriter).String(), 5))
	}
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- strings.TrimSpace(line)
	}()
	select {
	case line := <-ready:
		if line != fmt.Sprintf("ready %d", n) {
			m.stop()
			return nil, fmt.Errorf("moto seeded by %s did not start (%q): %s", python, line, lastLines(cmd.Stderr.(*lockedWriter).String(), 5))
		}
	case <-ctx.Done():
		m.stop()
		return nil, ctx.Err()
	}
	return m, nil
}

func (m *seededMoto) stop() {
	_ = m.stdin.Close()
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}
