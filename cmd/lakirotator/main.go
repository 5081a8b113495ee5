// Command lakirotator is the rotation daemon and its CLI.
package main

import (
	"os"

	"github.com/lakirotator/lakirotator/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Env: os.Getenv}))
}
