// Command lakibench seeds N managed secrets in moto and the LakiConnect
// simulator, rotates them all with the Secrets Manager rate limits set to
// AWS's quotas, and prints throughput against the quota bound, calls per
// rotation, latency, emergency response under load and memory.
//
//	lakibench -n 1000
//	lakibench -n 10000 -stand-in -idle-serve -json
package main

import (
	"os"

	"github.com/lakirotator/lakirotator/bench"
)

func main() { os.Exit(bench.Main(os.Args[1:], os.Stdout, os.Stderr)) }
