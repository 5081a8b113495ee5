package audit

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/testutil/diskfull"
)

func TestDiskFullQueuesThenRecoversInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	disk := &diskfull.Disk{}
	clk := clock.NewFake(t0)
	fs, err := OpenFileSinkWith(path, FileOptions{Clock: clk, WrapWriter: disk.Wrap})
	require.NoError(t, err)
	defer fs.Close()
	var changes []bool
	var failures int
	w := NewWriter(clk, nil, fs).Observe(Observer{
		WriteFailed:     func(error) { failures++ },
		WritableChanged: func(ok bool, _ error) { changes = append(changes, ok) },
	})
	ctx := context.Background()
	require.NoError(t, w.Append(ctx, sampleEvent(1)))
	assert.True(t, w.Writable())

	disk.Full.Store(true)
	err = w.Append(ctx, sampleEvent(2))
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrUnavailable), "%v", err)
	assert.True(t, errors.Is(err, syscall.ENOSPC), "the cause is named: %v", err)
	assert.False(t, w.Writable())
	require.Error(t, w.Check(ctx))
	// A second record while full is queued behind the first (the torn tail
	// cannot be moved aside either: the disk is full).
	require.Error(t, w.Append(ctx, sampleEvent(3)))
	assert.Equal(t, 2, w.Queued())
	assert.Equal(t, 2, failures, "each failed attempt is counted")

	// Space is freed: the next retry, with no new event and no restart,
	// repairs the torn tail and writes the queued records in order.
	disk.Full.Store(false)
	require.NoError(t, w.Retry(ctx))
	assert.True(t, w.Writable())
	require.NoError(t, w.Check(ctx))
	assert.Equal(t, 0, w.Queued())
	assert.Equal(t, []bool{false, true}, changes)

	recs := readFileRecords(t, path)
	var got []string
	for _, r := range recs {
		if r.Event.KeyID != "" {
			got = append(got, r.Event.KeyID)
		} else {
			got = append(got, r.Event.Details["reason"])
		}
	}
	assert.Equal(t, []string{"key_0001", "torn_tail_repaired", "key_0002", "key_0003", "audit_recovered"}, got)
	res := verifyFile(t, path)
	assert.True(t, res.OK(), res.String())
	matches, _ := filepath.Glob(path + ".torn-*")
	assert.Len(t, matches, 1)
}

func TestQueueIsBoundedAndLossIsRecorded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	disk := &diskfull.Disk{}
	fs, err := OpenFileSinkWith(path, FileOptions{WrapWriter: disk.Wrap})
	require.NoError(t, err)
	defer fs.Close()
	w := NewWriter(clock.NewFake(t0), nil, fs).SetMaxQueued(3)
	disk.Full.Store(true)
	for i := range 5 {
		w.Emit(context.Background(), sampleEvent(i))
	}
	assert.Equal(t, 3, w.Queued())
	disk.Full.Store(false)
	require.NoError(t, w.Retry(context.Background()))
	recs := readFileRecords(t, path)
	last := recs[len(recs)-1]
	assert.Equal(t, "audit_recovered", last.Event.Details["reason"])
	assert.Equal(t, "2", last.Event.Details["records_lost"])
}

// Vault's rule: a record that reaches at least one destination keeps the
// audit writable; the failing destination gets its records when it recovers.
func TestOneWorkingSinkKeepsTheAuditWritable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	disk := &diskfull.Disk{}
	fs, err := OpenFileSinkWith(path, FileOptions{WrapWriter: disk.Wrap})
	require.NoError(t, err)
	defer fs.Close()
	var stream bytes.Buffer
	w := NewWriter(clock.NewFake(t0), nil, fs, NewStreamSink(&stream))
	disk.Full.Store(true)
	err = w.Append(context.Background(), sampleEvent(1))
	require.Error(t, err, "the caller hears that a destination failed")
	assert.False(t, errors.Is(err, ErrUnavailable), "but the audit is not unavailable: %v", err)
	assert.True(t, w.Writable())
	assert.Equal(t, 1, w.Queued())
	assert.Equal(t, 1, strings.Count(stream.String(), "\n"))

	disk.Full.Store(false)
	require.NoError(t, w.Retry(context.Background()))
	assert.Equal(t, 0, w.Queued())
	recs := readFileRecords(t, path)
	require.Len(t, recs, 3) // torn tail repaired, the record, the recovery note
	assert.Equal(t, "key_0001", recs[1].Event.KeyID)
}
