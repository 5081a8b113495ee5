package daemon

import (
	"os"
	"path/filepath"

	"github.com/lakirotator/lakirotator/config"
)

// checkPoliciesDir reports a policies_dir that is not a readable directory
// at the line that names it, with the path as resolved: a config copied
// elsewhere keeps its relative policies_dir, which then points at nothing.
func checkPoliciesDir(cfg *config.Config) error {
	dir := cfg.PoliciesDir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	st, err := os.Stat(dir)
	switch {
	case os.IsNotExist(err):
		return cfg.ProblemAt("policies_dir", "directory %s does not exist (a relative policies_dir is taken from the config file's directory, %s)",
			dir, cfg.Dir())
	case err != nil:
		return cfg.ProblemAt("policies_dir", "cannot read %s: %v", dir, err)
	case !st.IsDir():
		return cfg.ProblemAt("policies_dir", "%s is a file, not a directory of policy files", dir)
	}
	return nil
}
