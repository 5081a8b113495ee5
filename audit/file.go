package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/clock"
)

// FileSink appends records to a local file: opened append-only, mode 0600,
// fsync after every record, and an exclusive flock held from reading the
// last line to writing the next one, so that several writers (goroutines or
// processes) on one file keep one chain. A torn tail (a partial last line
// left by a failed write, e.g. on a full disk) is repaired under the same
// lock when the file is opened and before every append: the partial bytes
// are moved to a file beside it, the file is cut back to its last complete
// line, and a record saying so continues the chain.
type FileSink struct {
	mu    sync.Mutex
	path  string
	f     *os.File
	out   io.Writer // writes to f; a test seam (a disk that returns ENOSPC)
	clock clock.Clock
	wrap  func(io.Writer) io.Writer
}

// FileOptions are seams for FileSink; the zero value is the real thing.
type FileOptions struct {
	// Clock times the record of a torn-tail repair (default: real time).
	Clock clock.Clock
	// WrapWriter, when set, wraps every write the sink makes (to the audit
	// file and to the file a torn tail is moved to); tests use it to play a
	// full disk.
	WrapWriter func(io.Writer) io.Writer
}

// OpenFileSink opens (creating with mode 0600) the audit file at path. It
// refuses a file that others can read or write, or that is not a regular file.
func OpenFileSink(path string) (*FileSink, error) {
	return OpenFileSinkWith(path, FileOptions{})
}

// OpenFileSinkWith is OpenFileSink with seams. A torn tail found on opening
// is repaired now; if that fails (the disk is still full) the next append
// tries again, so opening does not fail on it.
func OpenFileSinkWith(path string, o FileOptions) (*FileSink, error) {
	s, err := openFileSink(path)
	if err != nil {
		return nil, err
	}
	s.clock = o.Clock
	if s.clock == nil {
		s.clock = clock.Real{}
	}
	s.wrap = o.WrapWriter
	if s.wrap == nil {
		s.wrap = func(w io.Writer) io.Writer { return w }
	}
	s.out = s.wrap(s.f)
	_ = s.Append(context.Background(), nil)
	return s, nil
}

func openFileSink(path string) (*FileSink, error) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("audit: stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, fmt.Errorf("audit: %s is not a regular file (mode %s)", path, fi.Mode())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		_ = f.Close()
		return nil, fmt.Errorf("audit: %s has mode %#o; the audit file must be 0600 (run chmod 600 %s)", path, perm, path)
	}
	return &FileSink{path: path, f: f}, nil
}

// Path is the file the sink writes.
func (s *FileSink) Path() string { return s.path }

// Close closes the file.
func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.Close()
}

// Append writes the line next builds after the file's head. A nil next
// only repairs a torn tail.
func (s *FileSink) Append(_ context.Context, next func(Head) ([]byte, error)) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fd := int(s.f.Fd())
	if err := syscall.Flock(fd, syscall.LOCK_EX); err != nil {
		return fmt.Errorf("audit: lock %s: %w", s.path, err)
	}
	defer func() {
		if uerr := syscall.Flock(fd, syscall.LOCK_UN); uerr != nil && err == nil {
			err = fmt.Errorf("audit: unlock %s: %w", s.path, uerr)
		}
	}()
	last, err := lastLine(s.f)
	var torn *tornTail
	if errors.As(err, &torn) {
		if last, err = s.repair(torn); err != nil {
			return fmt.Errorf("audit: %s: repairing a torn tail: %w", s.path, err)
		}
	}
	if err != nil {
		return fmt.Errorf("audit: %s: %w", s.path, err)
	}
	if next == nil {
		return nil
	}
	var head Head
	if last != nil {
		if head, err = decodeHead(last); err != nil {
			return fmt.Errorf("audit: %s: last line: %w; run audit verify", s.path, err)
		}
	}
	line, err := next(head)
	if err != nil {
		return err
	}
	return s.writeLine(line)
}

func (s *FileSink) writeLine(line []byte) error {
	fi, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("audit: stat %s: %w", s.path, err)
	}
	if _, err := s.out.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("audit: write %s: %w", s.path, err) // a partial line is repaired on the next attempt
	}
	if err := s.f.Sync(); err != nil {
		// The record is reported unwritten and will be written again:
		// take this copy back so that it is not in the trail twice.
		_ = s.f.Truncate(fi.Size())
		return fmt.Errorf("audit: fsync %s: %w", s.path, err)
	}
	return nil
}

// repair moves a torn tail aside, cuts the file back to its last complete
// line, and appends a record saying what was moved where. It returns the
// new last line. The file is cut only after the partial bytes are safely
// in the side file, so a failure leaves the file as it was.
func (s *FileSink) repair(t *tornTail) ([]byte, error) {
	partial := make([]byte, t.size-t.offset)
	if _, err := s.f.ReadAt(partial, t.offset); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	aside, err := s.moveAside(t.offset, partial)
	if err != nil {
		return nil, err
	}
	if err := s.f.Truncate(t.offset); err != nil {
		return nil, err
	}
	if err := s.f.Sync(); err != nil {
		return nil, err
	}
	var head Head
	if last, err := lastLine(s.f); err != nil {
		return nil, err
	} else if last != nil {
		if head, err = decodeHead(last); err != nil {
			return nil, fmt.Errorf("last line before the torn tail: %w; run audit verify", err)
		}
	}
	sum := sha256.Sum256(partial)
	now := s.clock.Now()
	note := events.Event{
		Time: now, Step: events.StepAudit, Outcome: events.OutcomeWarning, Severity: events.SeverityWarning,
		Reason: "a partial last line (a write that failed part way) was moved aside and the chain continues after the last complete record",
		Details: map[string]string{
			"reason": "torn_tail_repaired", "offset": strconv.FormatInt(t.offset, 10), "bytes": strconv.Itoa(len(partial)),
			"moved_to": filepath.Base(aside), "sha256": hex.EncodeToString(sum[:]),
		},
	}
	line, _, err := encodeRecord(head, now, note)
	if err != nil {
		return nil, err
	}
	if err := s.writeLine(line); err != nil {
		return nil, err
	}
	return line, nil
}

// moveAside writes partial to "<file>.torn-<offset>" (mode 0600) and
// returns its path; a file of that name holding the same bytes is reused
// (a repair retried after a crash).
func (s *FileSink) moveAside(offset int64, partial []byte) (string, error) {
	for i := 0; ; i++ {
		name := s.path + ".torn-" + strconv.FormatInt(offset, 10)
		if i > 0 {
			name += "-" + strconv.Itoa(i)
		}
		if old, err := os.ReadFile(name); err == nil {
			if bytes.Equal(old, partial) {
				return name, nil
			}
			continue
		}
		f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		_, werr := s.wrap(f).Write(partial)
		if werr == nil {
			werr = f.Sync()
		}
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			_ = os.Remove(name)
			return "", werr
		}
		return name, nil
	}
}

// tornTail is lastLine's error for a file that does not end in a newline.
type tornTail struct{ offset, size int64 } // offset: where the partial line starts

func (t *tornTail) Error() string {
	return fmt.Sprintf("ends with an incomplete record at byte %d (torn write)", t.offset)
}

// lastLine returns the last complete line of f (without newline), or nil
// for an empty file. A file that does not end in a newline holds a torn
// write: appending after it would hide it, so that is a *tornTail error.
func lastLine(f *os.File) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	if size == 0 {
		return nil, nil
	}
	var tail []byte
	const chunk = 4096
	end := size
	for {
		start := max(end-chunk, 0)
		buf := make([]byte, end-start)
		if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		tail = append(buf, tail...)
		if len(tail) > 0 && end == size && tail[len(tail)-1] != '\n' {
			return nil, &tornTail{offset: lastNewline(f, size) + 1, size: size}
		}
		// Look for the newline before the last line.
		for i := len(tail) - 2; i >= 0; i-- {
			if tail[i] == '\n' {
				return tail[i+1 : len(tail)-1], nil
			}
		}
		if start == 0 {
			return tail[:len(tail)-1], nil
		}
		end = start
	}
}

// lastNewline is the offset of the last newline in f's first size bytes, or -1.
func lastNewline(f *os.File, size int64) int64 {
	const chunk = 4096
	for end := size; end > 0; {
		start := max(end-chunk, 0)
		buf := make([]byte, end-start)
		if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
			return -1
		}
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			return start + int64(i)
		}
		end = start
	}
	return -1
}
