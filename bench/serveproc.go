package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
)

// serveProc is one measured `lakirotator serve`, run from a directory
// holding its config, with its output in a log file.
type serveProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once it has exited; err is set then
	err  error
}

// startServe starts binary's serve on dir/lakirotator.yaml, logging to log.
func startServe(binary, dir string, log *os.File) (*serveProc, error) {
	cmd := exec.Command(binary, "serve", "--config", filepath.Join(dir, "lakirotator.yaml"))
	cmd.Dir = dir
	cmd.Env = motoserver.Env()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", binary, err)
	}
	p := &serveProc{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// stop ends it as an operator would (SIGTERM), killing it after 10 s.
func (p *serveProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}
