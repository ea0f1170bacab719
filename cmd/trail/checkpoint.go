package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// checkpointCmd is "trail checkpoint": the latest signed checkpoint, from a
// server or a data directory.
type checkpointCmd struct {
	stdout, stderr io.Writer
}

func (c *checkpointCmd) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("checkpoint", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	setUsage(fs, "checkpoint [flags]", "Prints the latest signed checkpoint of a server, or of a data directory with --data.")
	remote := addRemoteFlags(fs)
	data := fs.String("data", "", "read it from this data directory instead of a server")
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	var note []byte
	var err error
	if *data != "" {
		note, err = os.ReadFile(filepath.Join(*data, "checkpoint"))
	} else {
		cl, cerr := remote.client()
		if cerr != nil {
			return cerr
		}
		defer cl.Close(context.Background())
		note, err = cl.Checkpoint(ctx)
	}
	if err != nil {
		return err
	}
	_, err = c.stdout.Write(note)
	return err
}
