package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lakirotator/lakirotator/providers/secretsmanager"
)

// needArgs names the arguments a verb needs, so that a missing one reads
// "rotate needs SECRET" instead of cobra's count of arguments.
func needArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < len(names):
			return usageErr("%s needs %s; see `%s --help`", cmd.CommandPath()[len(cmd.Root().Name())+1:],
				strings.Join(names[len(args):], " "), cmd.CommandPath())
		case len(args) > len(names):
			return usageErr("%s takes %d argument(s) (%s), got %d: %s; see `%s --help`", cmd.Name(), len(names),
				strings.Join(names, " "), len(args), strings.Join(args, " "), cmd.CommandPath())
		}
		return nil
	}
}

// noArgs refuses stray arguments with the verb's name and a hint.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErr("%s takes no arguments, got %q; see `%s --help`", cmd.Name(), strings.Join(args, " "), cmd.CommandPath())
	}
	return nil
}

// BuildInfo is what `lakirotator version` prints.
type BuildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Modified  bool   `json:"modified"`
	GoVersion string `json:"go_version"`
}

// readBuildInfo reads the module version and VCS stamp the Go toolchain
// embedded; a binary built without them says "(devel)" and "unknown".
func readBuildInfo() BuildInfo {
	bi := BuildInfo{Version: "(devel)", Commit: "unknown"}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return bi
	}
	bi.GoVersion = info.GoVersion
	if v := info.Main.Version; v != "" {
		bi.Version = v
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			bi.Commit = s.Value
		case "vcs.modified":
			bi.Modified = s.Value == "true"
		}
	}
	return bi
}

func (b BuildInfo) String() string {
	commit := b.Commit
	if b.Modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("lakirotator %s, commit %s, %s", b.Version, commit, b.GoVersion)
}

func newVersionCmd(stdio IO, g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the module version, commit and Go version",
		Example: "  lakirotator version\n  lakirotator version -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.checkOutput(); err != nil {
				return err
			}
			bi := readBuildInfo()
			if g.output == "json" {
				return writeJSON(stdio.Out, bi)
			}
			_, err := fmt.Fprintln(stdio.Out, bi.String())
			return err
		},
	}
}

// writeJSON prints v indented, as every -o json does.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// isTerminal reports whether the command's input is a person at a terminal.
func (stdio IO) isTerminal() bool {
	if stdio.Terminal != nil {
		return *stdio.Terminal
	}
	f, ok := stdio.In.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// confirm lists what is about to happen and asks on standard input. Without
// a terminal it refuses: nobody is there to answer, and an unattended run of
// something destructive must say --yes.
func confirm(stdio IO, what string) error {
	if !stdio.isTerminal() {
		fmt.Fprintf(stdio.Err, "%s\n", what)
		return usageErr("not confirmed: standard input is not a terminal; give --yes to run this unattended")
	}
	fmt.Fprintf(stdio.Err, "%s\nProceed? [y/N] ", what)
	line, _ := bufio.NewReader(stdio.In).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	fmt.Fprintln(stdio.Err, "nothing rotated")
	return withCode(ExitFailure, fmt.Errorf("not confirmed"))
}

var envInError = regexp.MustCompile(`environments\.([A-Za-z0-9_-]+)\.`)

// printError prints the error that ends the command. A recognised AWS
// failure reads as one line saying what to do; the SDK's chain behind it
// only at --log-level debug.
func printError(stdio IO, g *globalFlags, err error) {
	f := secretsmanager.Explain(err)
	if f == nil {
		fmt.Fprintln(stdio.Err, "lakirotator:", err)
		return
	}
	line := f.Line
	if m := envInError.FindStringSubmatch(err.Error()); m != nil {
		line = strings.ReplaceAll(line, "<env>", m[1])
	}
	fmt.Fprintln(stdio.Err, "lakirotator:", line)
	if g.logLevel == "debug" {
		fmt.Fprintln(stdio.Err, "lakirotator: the AWS SDK said:", err)
	} else {
		fmt.Fprintln(stdio.Err, "lakirotator: (--log-level debug shows the AWS SDK's error chain)")
	}
}
