package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/trailhq/trail/internal/backup"
)

// restoreCmd is "trail restore --from BACKUP --data NEWDIR": checks the
// backup (every record against the tree and the signed checkpoints) and
// makes NEWDIR from it, ready for trail serve. Exit 0 when restored, 1 when
// the backup does not verify, 2 when it cannot run.
type restoreCmd struct {
	stdout, stderr io.Writer
}

func (c *restoreCmd) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	setUsage(fs, "restore --from BACKUP --data NEWDIR [flags]",
		"Checks a backup made by trail backup (every record against the tree and the signed checkpoints) and makes the new\n"+
			"data directory NEWDIR from it (it must not exist, or be empty); trail serve --data NEWDIR then serves it and goes on appending.")
	from := fs.String("from", "", "the backup `directory`")
	data := fs.String("data", "", "the new data `directory` to make")
	vkey := fs.String("vkey", "", "the checkpoint verifier key `file` every checkpoint must be signed with (default: the backup's own)")
	skey := fs.String("signing-key", "", "the log's signing key `file` (the original's checkpoint.key), for a backup taken without it")
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	if fs.NArg() > 0 {
		return &exitError{2, fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if *from == "" || *data == "" {
		return &exitError{2, errors.New("usage: trail restore --from BACKUP --data NEWDIR [--vkey FILE] [--signing-key FILE]")}
	}
	trusted, err := backupKey(c.stderr, *from, *vkey)
	if err != nil {
		return err
	}
	opts := backup.RestoreOptions{VerifierKey: trusted}
	if *skey != "" {
		if opts.SigningKey, err = os.ReadFile(*skey); err != nil {
			return &exitError{2, err}
		}
	}
	start := time.Now()
	m, rep, err := backup.Restore(ctx, *from, *data, opts)
	switch {
	case errors.Is(err, backup.ErrInvalid):
		fmt.Fprintf(c.stdout, "FAIL %s: %v\n", *from, err)
		return &exitError{1, err}
	case err != nil:
		return &exitError{2, err}
	}
	fmt.Fprintf(c.stdout, "OK restored %d events in %d streams, %d signed checkpoints verified, to %s in %v; serve it with trail serve --data %s\n",
		m.Size, rep.Streams, rep.Checkpoints, *data, time.Since(start).Round(time.Millisecond), *data)
	if !m.Has("admin.token") {
		fmt.Fprintf(c.stdout, "the backup holds no admin token: trail serve makes a new one in %s on its first start\n", filepath.Join(*data, "admin.token"))
	}
	return nil
}
