package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
)

// FileSink appends records to a local file: opened append-only, mode 0600,
// fsync after every record, and an exclusive flock held from reading the
// last line to writing the next one, so that several writers (goroutines or
// processes) on one file keep one chain.
type FileSink struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

// OpenFileSink opens (creating with mode 0600) the audit file at path. It
// refuses a file that others can read or write, or that is not a regular file.
func OpenFileSink(path string) (*FileSink, error) {
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
	if err != nil {
		return fmt.Errorf("audit: %s: %w", s.path, err)
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
	if _, err := s.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("audit: write %s: %w", s.path, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("audit: fsync %s: %w", s.path, err)
	}
	return nil
}

// lastLine returns the last complete line of f (without newline), or nil
// for an empty file. A file that does not end in a newline holds a torn
// write: appending after it would hide it, so that is an error.
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
			return nil, fmt.Errorf("ends with an incomplete record at byte %d (torn write?); run audit verify", size)
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
