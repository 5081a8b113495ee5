package demo

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// markerName is the file that marks a directory as the demo's own. Only a
// directory holding it is ever cleared: LAKIROTATOR_DEMO_DIR may point
// anywhere, and a directory of someone's files must survive a typo.
const markerName = ".lakirotator-demo"

const markerText = "This directory belongs to `lakirotator serve --demo`, which clears it at every start.\n"

// prepareDir leaves dir empty but for the marker. A missing directory is
// created; an empty one is taken; one that holds the marker (an earlier
// demo's) has its contents removed. Any other directory is refused and left
// as it is.
func prepareDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("demo: creating %s: %w", dir, err)
		}
	case err != nil:
		return fmt.Errorf("demo: reading %s: %w", dir, err)
	case len(entries) > 0:
		if !marked(dir) {
			return fmt.Errorf("demo: %s is not empty and has no %s marker, so the demo did not create it; it is left as it is. "+
				"Point LAKIROTATOR_DEMO_DIR at a new or empty directory (or remove this one yourself if it is an older demo's)", dir, markerName)
		}
		// A fresh demo every run: the previous run's keys lived in its simulator.
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("demo: clearing the previous demo's %s: %w", dir, err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, markerName), []byte(markerText), 0o600); err != nil {
		return fmt.Errorf("demo: marking %s as the demo's: %w", dir, err)
	}
	return nil
}

// marked reports whether dir holds the marker as a regular file.
func marked(dir string) bool {
	info, err := os.Lstat(filepath.Join(dir, markerName))
	return err == nil && info.Mode().IsRegular()
}
