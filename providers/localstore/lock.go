package localstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// Processes sharing one store file (a daemon and `rotate --local`, say)
// take turns through an flock on a sidecar file, PATH.lock: the store file
// itself is replaced by a rename on every save, so a lock on it would be
// lost with it. Under the lock each operation first reloads the file if
// another process changed it, so no process writes from a stale copy.

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
	release = func() { f.Close() } // closing the descriptor drops the flock
	if err := s.reload(); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// reload reads the file again when it is not the one last read or written
// by this Store (each save makes a new file, so identity, size and
// modification time tell). Called with mu and the lock held.
func (s *Store) reload() error {
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
	if s.loaded != nil && os.SameFile(s.loaded, info) && s.loaded.ModTime().Equal(info.ModTime()) && s.loaded.Size() == info.Size() {
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
	s.data, s.loaded = d, info
	return nil
}
