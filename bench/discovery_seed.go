// How lakibench -discovery puts its secrets into moto.

package bench

import (
	"bufio"
	"context"
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

	_ "embed"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
)

//go:embed motoseed.py
var motoSeedScript string

// smClient is a Secrets Manager client on moto's static credentials.
func smClient(endpoint string) *sm.Client {
	return sm.New(sm.Options{Region: motoserver.Region, BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(motoserver.AccessKeyID, motoserver.SecretAccessKey, "")})
}

// seedByAPI creates the n secrets with concurrent CreateSecret calls.
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

// startSeededMoto streams the n secrets to motoseed.py, which creates them
// in moto's own process, and returns once that moto serves them.
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

type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
