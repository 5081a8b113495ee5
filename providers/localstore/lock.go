package localstore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Processes sharing one store file (a daemon and `rotate --local`, say)
// take turns through an flock on a sidecar file, PATH.lock: the store file
// itself is replaced by a rename on every save, so a lock on it would be
// lost with it. The lock file also holds a change mark, a random value each
// save writes anew; under the lock each operation first reloads the store
// file when the mark (or the file) is not the one it last saw, so no
// process writes from a stale copy.

// lockPathSuffix names the sidecar lock file.
const lockPathSuffix = ".lock"

// lockExclusive and lockShared are what writes and reads take.
const (
	lockExclusive = syscall.LOCK_EX
	lockShared    = syscall.LOCK_SH
)

// acquire takes the cross-process lock and brings s.data up to date with
// the file. Called with mu held; the caller must call the returned release.
func (s *Store) acquire(how int) (release func(), err error) {
	if s.path == "" {
		return func() {}, nil
	}
	f, err := os.OpenFile(s.path+lockPathSuffix, os.O_RDWR|os.O_CREATE, fileMode)
	if errors.Is(err, fs.ErrNotExist) && how == lockShared {
		// No directory yet, hence no store file: nothing to read or race on.
		return func() {}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", s.path+lockPathSuffix, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", s.path+lockPathSuffix, err)
	}
	s.lock = f
	release = func() { // closing the descriptor drops the flock
		s.lock = nil
		f.Close()
	}
	if err := s.reload(); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// reload reads the file again unless both the change mark and the file are
// the ones this Store last read or wrote. Called with mu and the lock held.
func (s *Store) reload() error {
	mark, err := s.readMark()
	if err != nil {
		return err
	}
	info, err := os.Stat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		if s.loaded != nil {
			return fmt.Errorf("%s was removed while in use", s.path)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if s.loaded != nil && mark == s.mark && os.SameFile(s.loaded, info) &&
		s.loaded.ModTime().Equal(info.ModTime()) && s.loaded.Size() == info.Size() {
		return nil
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", s.path)
	}
	if perm := info.Mode().Perm(); perm&^fileMode != 0 {
		return fmt.Errorf("%s has mode %#o; it holds secrets and must be %#o (chmod 600 %s)", s.path, perm, fileMode, s.path)
	}
	b, err := os.ReadFile(s.path)
	if err != nil {
		return err
	}
	d := fileData{}
	if err := decode(b, &d); err != nil {
		return fmt.Errorf("%s: %w", s.path, err)
	}
	s.data, s.loaded, s.mark = d, info, mark
	return nil
}

// readMark reads the change mark from the held lock file ("" when none
// was written yet).
func (s *Store) readMark() (string, error) {
	b := make([]byte, 64)
	n, err := s.lock.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read %s: %w", s.lock.Name(), err)
	}
	return string(b[:n]), nil
}

// saved records that this Store wrote the file: a new change mark for the
// other processes, and what it wrote for itself. Called with mu and the
// exclusive lock held, after the rename.
func (s *Store) saved() error {
	info, err := os.Stat(s.path)
	if err == nil {
		var b [16]byte
		_, _ = rand.Read(b[:])
		mark := hex.EncodeToString(b[:])
		if err = s.lock.Truncate(0); err == nil {
			_, err = s.lock.WriteAt([]byte(mark), 0)
		}
		if err == nil {
			s.loaded, s.mark = info, mark
			return nil
		}
	}
	// Memory may now differ from the file: read it afresh next time.
	s.loaded, s.mark = nil, ""
	return fmt.Errorf("after writing %s: %w", s.path, err)
}
