package terraform_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Line int
	Cmd  string // upper case
	Args string
}

func parseDockerfile(path string) ([]instruction, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{Line: start, Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)})
		cur.Reset()
	}
	return out, sc.Err()
}

// finalStage returns the instructions from the last FROM on.
func finalStage(ins []instruction) []instruction {
	last := -1
	for i, in := range ins {
		if in.Cmd == "FROM" {
			last = i
		}
	}
	if last < 0 {
		return nil
	}
	return ins[last:]
}

func TestDockerfile(t *testing.T) {
	path := filepath.Join("..", "Dockerfile")
	ins, err := parseDockerfile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range dockerfileProblems(ins) {
		t.Errorf("%s: %s", path, p)
	}
}

func TestDockerfileCheckCatchesProblems(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Dockerfile")
	writeFile(t, path, `FROM golang:1.26 AS build
RUN go build -o /out/app ./cmd/lakirotator
FROM debian:12
COPY --from=build /out/app /app
RUN apt-get update
ENTRYPOINT /app serve
`)
	ins, err := parseDockerfile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(dockerfileProblems(ins), "\n")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "distroless", "USER", "RUN in the final stage", "exec form"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems do not mention %q; got:\n%s", want, got)
		}
	}
}

func dockerfileProblems(ins []instruction) []string {
	var problems []string
	var build string
	for _, in := range ins {
		if in.Cmd == "RUN" && strings.Contains(in.Args, "go build") {
			build = in.Args
		}
	}
	if build == "" {
		problems = append(problems, "no RUN with go build")
	}
	for _, flag := range []string{"CGO_ENABLED=0", "-trimpath", "-s -w", "./cmd/lakirotator"} {
		if build != "" && !strings.Contains(build, flag) {
			problems = append(problems, "the go build must be static and reproducible: missing "+flag)
		}
	}
	final := finalStage(ins)
	if len(final) == 0 {
		return append(problems, "no FROM")
	}
	base := strings.Fields(final[0].Args)[0]
	if !strings.HasPrefix(base, "gcr.io/distroless/static") && base != "scratch" {
		problems = append(problems, fmt.Sprintf("line %d: final base %s is neither distroless static nor scratch (it would ship a shell)", final[0].Line, base))
	}
	var user, entry string
	for _, in := range final[1:] {
		switch in.Cmd {
		case "USER":
			user = in.Args
		case "ENTRYPOINT":
			entry = in.Args
		case "RUN", "SHELL":
			problems = append(problems, fmt.Sprintf("line %d: %s in the final stage (it has no shell)", in.Line, in.Cmd))
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if user == "" || uid == "0" || uid == "root" {
		problems = append(problems, fmt.Sprintf("the final stage must set a non-root USER (got %q)", user))
	}
	if !strings.HasPrefix(entry, "[") {
		problems = append(problems, "ENTRYPOINT must use the exec form [\"/lakirotator\"] (the shell form needs a shell)")
	}
	return problems
}
