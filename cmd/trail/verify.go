package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/trailhq/trail"
)

// verifyCmd is "trail verify --data DIR": exit 0 when whole, 1 naming the
// first bad index, 2 when it cannot run.
type verifyCmd struct {
	stdout, stderr io.Writer
}

func (c *verifyCmd) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	data := fs.String("data", "", "data directory to verify")
	remote := addRemoteFlags(fs)
	vkey := fs.String("vkey", "", "with --server: the checkpoint verifier key file (DIR/checkpoint.vkey)")
	state := fs.String("state", "", "with --server: file holding the last verified checkpoint (created on the first run)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	checkJSON := fs.Bool("check-json", false, "also parse every record as JSON (slower; tampering is caught without it)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &exitError{2, err}
	}
	usage := &exitError{2, errors.New("usage: trail verify --data DIR, or trail verify --server URL --vkey FILE --state FILE")}
	switch {
	case fs.NArg() > 0 || (*data != "" && isSet(fs, "server")):
		return usage
	case *data == "" && *remote.server != "":
		return c.verifyRemote(ctx, remote, *vkey, *state)
	case *data == "":
		return usage
	}
	opts := trail.VerifyOptions{CheckJSON: *checkJSON}
	if f, ok := c.stderr.(*os.File); ok && !*quiet && term.IsTerminal(int(f.Fd())) {
		opts.Progress = progressBar(f)
	}
	start := time.Now()
	rep, err := trail.Verify(ctx, *data, opts)
	if opts.Progress != nil {
		fmt.Fprintln(c.stderr)
	}
	var ve *trail.VerifyError
	switch {
	case errors.As(err, &ve):
		fmt.Fprintf(c.stdout, "FAIL %s: %v\n", *data, ve)
		return &exitError{1, err}
	case err != nil:
		return &exitError{2, err}
	}
	el := time.Since(start)
	fmt.Fprintf(c.stdout, "OK %s: %d events in %d streams, %d signed checkpoints verified in %v (%.0f events/s)\n",
		*data, rep.Events, rep.Streams, rep.Checkpoints, el.Round(time.Millisecond), float64(rep.Events)/el.Seconds())
	if rep.TornTail != "" {
		fmt.Fprintf(c.stdout, "note: %s\n", rep.TornTail)
	}
	return nil
}

// isSet reports whether the flag was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func progressBar(w io.Writer) func(done, total int64) {
	return func(done, total int64) {
		if total <= 0 {
			return
		}
		const width = 40
		n := int(done * width / total)
		bar := make([]byte, width)
		for i := range bar {
			if i < n {
				bar[i] = '#'
			} else {
				bar[i] = '.'
			}
		}
		fmt.Fprintf(w, "\rverifying [%s] %3d%%", bar, done*100/total)
	}
}
