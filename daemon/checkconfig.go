package daemon

import (
	"os"

	"github.com/lakirotator/lakirotator/config"
)

// checkPoliciesDir reports a policies_dir that is not a readable directory
// at the line that names it, with the path as resolved: a config copied
// elsewhere keeps its relative policies_dir, which then points at nothing.
func checkPoliciesDir(cfg *config.Config) error {
	st, err := os.Stat(cfg.PoliciesDir)
	switch {
	case os.IsNotExist(err):
		return cfg.ProblemAt("policies_dir", "directory %s does not exist (a relative policies_dir is taken from the config file's directory, %s)",
			cfg.PoliciesDir, cfg.Dir())
	case err != nil:
		return cfg.ProblemAt("policies_dir", "cannot read %s: %v", cfg.PoliciesDir, err)
	case !st.IsDir():
		return cfg.ProblemAt("policies_dir", "%s is a file, not a directory of policy files", cfg.PoliciesDir)
	}
	return nil
}
