// Package diskfull plays a disk that fills up, for tests of what the audit
// trail does on ENOSPC without filling a real disk.
package diskfull

import (
	"io"
	"io/fs"
	"sync/atomic"
	"syscall"
)

// Disk wraps writers. While Full is set, a write stores the first half of
// its bytes and fails with ENOSPC, as write(2) does when space runs out
// part way through (so a torn line is left behind).
type Disk struct {
	Full atomic.Bool
	// Failed counts writes refused for lack of space.
	Failed atomic.Int64
}

// Wrap returns w as seen through the disk.
func (d *Disk) Wrap(w io.Writer) io.Writer { return writer{d: d, w: w} }

type writer struct {
	d *Disk
	w io.Writer
}

func (x writer) Write(p []byte) (int, error) {
	if !x.d.Full.Load() {
		return x.w.Write(p)
	}
	x.d.Failed.Add(1)
	n, err := x.w.Write(p[:len(p)/2])
	if err != nil {
		return n, err
	}
	return n, &fs.PathError{Op: "write", Path: "audit file", Err: syscall.ENOSPC}
}
