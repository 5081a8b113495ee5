package audit

import (
	"bytes"
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
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func sampleEvent(i int) events.Event {
	return events.Event{
		Step: events.StepCreate, Outcome: events.OutcomeSucceeded, Severity: events.SeverityInfo,
		Secret: fmt.Sprintf("prod/app-%d", i), Environment: "production", MasterMerchantID: "mm_1",
		KeyID: fmt.Sprintf("key_%04d", i), KeyLast4: "ab" + strconv.Itoa(10+i%90),
	}
}

// writeChain writes n records through a file sink and returns the file's lines.
func writeChain(t *testing.T, n int) (string, []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	fs, err := OpenFileSink(path)
	require.NoError(t, err)
	defer fs.Close()
	w := NewWriter(clock.NewFake(t0), nil, fs)
	for i := 1; i <= n; i++ {
		require.NoError(t, w.Append(context.Background(), sampleEvent(i)))
	}
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return path, strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func verifyLines(t *testing.T, lines []string) Result {
	t.Helper()
	res, err := Verify(strings.NewReader(strings.Join(lines, "\n") + "\n"))
	require.NoError(t, err)
	return res
}

func TestVerifyIntactChain(t *testing.T) {
	_, lines := writeChain(t, 6)
	require.Len(t, lines, 6)
	res := verifyLines(t, lines)
	assert.True(t, res.OK(), res.String())
	assert.Equal(t, 6, res.Records)
	assert.Equal(t, uint64(6), res.LastSeq)
	// The first record starts from the genesis; each next one names its predecessor's line hash.
	assert.Contains(t, lines[0], `"prev_hash":"`+GenesisHash+`"`)
	assert.Contains(t, lines[3], `"prev_hash":"`+LineHash([]byte(lines[2]))+`"`)
}

// forge re-signs an edited line the way an attacker with this code would.
func forge(t *testing.T, line string, edit func(*events.Event)) string {
	t.Helper()
	var r Record
	require.NoError(t, json.Unmarshal([]byte(line), &r))
	edit(&r.Event)
	out, _, err := encodeRecord(Head{Seq: r.Seq - 1, Hash: r.PrevHash}, r.Time, r.Event)
	require.NoError(t, err)
	if r.Seq == 1 {
		out, _, err = encodeRecord(Head{}, r.Time, r.Event)
		require.NoError(t, err)
	}
	return string(out)
}

func TestVerifyFindsTampering(t *testing.T) {
	_, lines := writeChain(t, 6)
	cp := func() []string { return append([]string(nil), lines...) }

	tests := []struct {
		name  string
		lines func() []string
		line  int
		kind  ProblemKind
		seq   uint64
	}{
		{"edit in place", func() []string {
			l := cp()
			l[2] = strings.Replace(l[2], "key_0003", "key_9999", 1)
			return l
		}, 3, ProblemEdited, 3},
		{"edit of the last line", func() []string {
			l := cp()
			l[5] = strings.Replace(l[5], `"succeeded"`, `"failed"`, 1)
			return l
		}, 6, ProblemEdited, 6},
		{"edit with recomputed own hash", func() []string {
			l := cp()
			l[3] = forge(t, l[3], func(e *events.Event) { e.Actor = "mallory" })
			return l
		}, 4, ProblemEdited, 4},
		{"delete a middle line", func() []string {
			l := cp()
			return append(l[:2], l[3:]...)
		}, 3, ProblemDeleted, 4},
		{"delete the first line", func() []string { return cp()[1:] }, 1, ProblemDeleted, 2},
		{"swap two lines", func() []string {
			l := cp()
			l[2], l[3] = l[3], l[2]
			return l
		}, 3, ProblemReordered, 4},
		{"move a line to the end", func() []string {
			l := cp()
			moved := l[1]
			l = append(l[:1], l[2:]...)
			return append(l, moved)
		}, 2, ProblemReordered, 3},
		{"insert a forged successor", func() []string {
			l := cp()
			fake, _, err := encodeRecord(Head{Seq: 3, Hash: LineHash([]byte(l[2]))}, t0, events.Event{Step: events.StepTrigger, Actor: "mallory"})
			require.NoError(t, err)
			return append(l[:3], append([]string{string(fake)}, l[3:]...)...)
		}, 4, ProblemInserted, 4},
		{"insert an unrelated record", func() []string {
			l := cp()
			fake, _, err := encodeRecord(Head{Seq: 41, Hash: GenesisHash}, t0, events.Event{Step: events.StepTrigger})
			require.NoError(t, err)
			return append(l[:2], append([]string{string(fake)}, l[2:]...)...)
		}, 3, ProblemInserted, 42},
		{"duplicate a line", func() []string {
			l := cp()
			return append(l[:4], append([]string{l[3]}, l[4:]...)...)
		}, 5, ProblemInserted, 4},
		{"garbage line", func() []string {
			l := cp()
			l[1] = "hello"
			return l
		}, 2, ProblemMalformed, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := verifyLines(t, tc.lines())
			require.False(t, res.OK(), "tampering not found")
			assert.Equal(t, tc.line, res.Problem.Line, res.String())
			assert.Equal(t, tc.kind, res.Problem.Kind, res.String())
			assert.Equal(t, tc.seq, res.Problem.Seq, res.String())
		})
	}
}

func TestFileSinkRefusesWideMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	require.NoError(t, os.Chmod(path, 0o644))
	_, err := OpenFileSink(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)
	assert.Contains(t, err.Error(), "0644")
}

func TestFileSinkCreatesPrivateFileAndContinuesChain(t *testing.T) {
	path, _ := writeChain(t, 2)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	// A second open (a daemon restart) continues the same chain.
	fs, err := OpenFileSink(path)
	require.NoError(t, err)
	w := NewWriter(clock.NewFake(t0), nil, fs)
	require.NoError(t, w.Append(context.Background(), sampleEvent(3)))
	require.NoError(t, fs.Close())
	res := verifyFile(t, path)
	assert.True(t, res.OK(), res.String())
	assert.Equal(t, uint64(3), res.LastSeq)
}

func TestFileSinkRepairsTornTailOnOpen(t *testing.T) {
	path, _ := writeChain(t, 2)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"seq":3,"prev`)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	fs, err := OpenFileSink(path)
	require.NoError(t, err)
	defer fs.Close()
	require.NoError(t, NewWriter(clock.NewFake(t0), nil, fs).Append(context.Background(), sampleEvent(3)))

	matches, _ := filepath.Glob(path + ".torn-*")
	require.Len(t, matches, 1, "the partial line is moved beside the file")
	moved, err := os.ReadFile(matches[0])
	require.NoError(t, err)
	assert.Equal(t, `{"seq":3,"prev`, string(moved))
	fi, err := os.Stat(matches[0])
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	recs := readFileRecords(t, path)
	require.Len(t, recs, 4)
	assert.Equal(t, events.StepAudit, recs[2].Event.Step)
	assert.Equal(t, "torn_tail_repaired", recs[2].Event.Details["reason"])
	assert.Equal(t, filepath.Base(matches[0]), recs[2].Event.Details["moved_to"])
	assert.Equal(t, "14", recs[2].Event.Details["bytes"])
	assert.Equal(t, "key_0003", recs[3].Event.KeyID)
	res := verifyFile(t, path)
	assert.True(t, res.OK(), res.String())
	assert.Equal(t, uint64(4), res.LastSeq)
}

func readFileRecords(t *testing.T, path string) []Record {
	t.Helper()
	return readFile(t, path, ReadRecords)
}

func verifyFile(t *testing.T, path string) Result {
	t.Helper()
	return readFile(t, path, Verify)
}

// readFile is what read makes of the file at path.
func readFile[T any](t *testing.T, path string, read func(io.Reader) (T, error)) T {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	v, err := read(f)
	require.NoError(t, err)
	return v
}

func TestConcurrentGoroutinesKeepOneChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	// Two sinks on one file (two open file descriptions) plus goroutines on each.
	a, err := OpenFileSink(path)
	require.NoError(t, err)
	defer a.Close()
	b, err := OpenFileSink(path)
	require.NoError(t, err)
	defer b.Close()
	wa := NewWriter(clock.Real{}, nil, a)
	wb := NewWriter(clock.Real{}, nil, b)
	var wg sync.WaitGroup
	for g := range 4 {
		w := wa
		if g%2 == 1 {
			w = wb
		}
		wg.Go(func() {
			for i := range 15 {
				assert.NoError(t, w.Append(context.Background(), sampleEvent(g*100+i)))
			}
		})
	}
	wg.Wait()
	res := verifyFile(t, path)
	assert.True(t, res.OK(), res.String())
	assert.Equal(t, 60, res.Records)
}

const childEnv = "AUDIT_TEST_CHILD_FILE"

// TestChildAppender is the body of the re-executed test binary in
// TestTwoProcessesKeepOneChain; on its own it does nothing.
func TestChildAppender(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("only runs as a child process")
	}
	fs, err := OpenFileSink(path)
	require.NoError(t, err)
	defer fs.Close()
	w := NewWriter(clock.Real{}, nil, fs)
	for i := range 25 {
		require.NoError(t, w.Append(context.Background(), sampleEvent(os.Getpid()%1000+i)))
	}
}

func TestTwoProcessesKeepOneChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestChildAppender$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+path)
		out := &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		require.NoError(t, cmd.Start())
		cmds = append(cmds, cmd)
		outs = append(outs, out)
	}
	for i, cmd := range cmds {
		require.NoError(t, cmd.Wait(), outs[i].String())
	}
	res := verifyFile(t, path)
	assert.True(t, res.OK(), res.String())
	assert.Equal(t, 50, res.Records)
}

func TestStreamSinkChainsAndRedacts(t *testing.T) {
	leaked := secret.New("sk_live_streamSECRETvalue1234")
	var buf bytes.Buffer
	w := NewWriter(clock.NewFake(t0), nil, NewStreamSink(&buf))
	w.Emit(context.Background(), events.Event{
		Step: events.StepTest, Outcome: events.OutcomeFailed, Secret: "prod/app",
		Error: fmt.Sprintf("whoami with key %v: 401", leaked),
	})
	w.Emit(context.Background(), sampleEvent(2))
	assert.NotContains(t, buf.String(), leaked.Reveal())
	assert.Contains(t, buf.String(), secret.Redacted)
	res, err := Verify(&buf)
	require.NoError(t, err)
	assert.True(t, res.OK(), res.String())
	assert.Equal(t, 2, res.Records)
}

type failingSink struct{}

func (failingSink) Append(context.Context, func(Head) ([]byte, error)) error {
	return fmt.Errorf("disk full")
}

func TestWriterCountsFailuresWithoutPanicking(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(clock.NewFake(t0), nil, failingSink{}, NewStreamSink(&buf))
	w.Emit(context.Background(), sampleEvent(1))
	assert.Equal(t, uint64(1), w.Failures())
	assert.Equal(t, 1, strings.Count(buf.String(), "\n"), "the healthy sink still gets the record")
}
