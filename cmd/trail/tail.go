package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
)

// tailCmd is "trail tail": live events as NDJSON (stored bytes) until
// interrupted.
type tailCmd struct {
	stdout, stderr io.Writer
}

func (c *tailCmd) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	setUsage(fs, "tail [flags]", "Prints new events as NDJSON (the stored bytes) as they are appended, until interrupted.")
	remote := addRemoteFlags(fs)
	stream := fs.String("stream", "", "only this stream")
	after := fs.String("after", "", "first replay the events after this index")
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	var from *uint64
	if *after != "" {
		n, err := strconv.ParseUint(*after, 10, 64)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--after %q is not an event index", *after)}
		}
		from = &n
	}
	cl, err := remote.authClient()
	if err != nil {
		return err
	}
	defer cl.Close(context.Background())
	err = cl.Tail(ctx, *stream, from, func(_ uint64, rec []byte) error {
		_, err := c.stdout.Write(append(rec, '\n'))
		return err
	})
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // interrupted: the normal end
	}
	return err
}
