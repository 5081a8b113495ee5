package cli

import (
	"context"

	"github.com/lakirotator/lakirotator/demo"
)

func runDemo(ctx context.Context, stdio IO) error {
	return withCode(ExitFailure, demo.Run(ctx, demo.Options{Dir: demoDir(stdio.Env), Out: stdio.Out, Err: stdio.Err}))
}
