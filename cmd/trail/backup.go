package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailhq/trail/internal/backup"
	"github.com/trailhq/trail/internal/datadir"
)

// backupCmd is "trail backup (--data DIR | --server URL) --to OUT": a
// consistent copy of a data directory up to its latest signed checkpoint,
// taken while the server goes on appending, written to OUT only once whole
// and checked (internal/backup). Exit 0 when written, 1 when the copy does
// not verify or the server refuses, 2 when it cannot run.
type backupCmd struct {
	stdout, stderr io.Writer
}

func (c *backupCmd) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	setUsage(fs, "backup (--data DIR | --server URL) --to OUT [flags]",
		"Copies a data directory (--data DIR, read while its server runs) or a running server's (--server URL, admin token)\n"+
			"up to its latest signed checkpoint into OUT, which must not exist or be empty. The copy is checked like\n"+
			"trail verify before it takes OUT's name; restore it with trail restore.")
	data := fs.String("data", "", "data directory to back up (its server may be running)")
	remote := addRemoteFlags(fs)
	to := fs.String("to", "", "`directory` to write the backup to (must not exist, or be empty)")
	vkey := fs.String("vkey", "", "the checkpoint verifier key `file` the backup's checkpoints must be signed with (default: the directory's own)")
	noKey := fs.Bool("no-key", false, "with --data: leave the signing key (checkpoint.key) out; trail restore then needs --signing-key")
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	server := remote.serverURL()
	switch {
	case fs.NArg() > 0:
		return &exitError{2, fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	case *to == "" || (*data != "" && isSet(fs, "server")) || (*data == "" && server == "") || (*noKey && *data == ""):
		return &exitError{2, errors.New("usage: trail backup --data DIR --to OUT [--no-key] [--vkey FILE], or trail backup --server URL (or $TRAIL_SERVER) --to OUT [--vkey FILE] with an admin token")}
	case *data == "":
		if err := remote.checkToken(); err != nil {
			return err
		}
	}
	source := *data
	if source == "" {
		source = server
	}
	trusted, err := backupKey(c.stderr, source, *vkey)
	if err != nil {
		return err
	}
	if *data != "" {
		if st, err := datadir.Inspect(*data); err != nil || st != datadir.Data {
			return &exitError{2, fmt.Errorf("%s is not a Trail data directory (no %s)", *data, datadir.Marker)}
		}
		if inside(*to, *data) {
			return &exitError{2, fmt.Errorf("--to %s is inside the data directory %s: write the backup elsewhere", *to, *data)}
		}
	}
	out, err := backup.NewDir(*to)
	if err != nil {
		return &exitError{2, err}
	}
	start := time.Now()
	m, err := c.write(ctx, out, *data, remote, backup.Options{VerifierKey: trusted, NoKey: *noKey})
	if err != nil {
		out.Abort()
		return err
	}
	fmt.Fprintf(c.stdout, "OK backup of %d events (checkpoint of %s) written to %s in %v\n",
		m.Size, m.Origin, *to, time.Since(start).Round(time.Millisecond))
	if m.Has("checkpoint.key") {
		fmt.Fprintf(c.stdout, "it holds the log's signing key (checkpoint.key, mode 0600): whoever reads it can sign checkpoints; keep it as private as the data directory\n")
	} else {
		fmt.Fprintf(c.stdout, "it holds no signing key: restore it with trail restore --signing-key FILE (the original's checkpoint.key)\n")
	}
	return nil
}

// write takes the backup into out (from the directory, or the server's
// archive), checks it and commits it.
func (c *backupCmd) write(ctx context.Context, out *backup.Dir, data string, remote remoteFlags, opts backup.Options) (*backup.Manifest, error) {
	if data != "" {
		if _, err := backup.Snapshot(ctx, vfs.Default, data, opts, out); err != nil {
			return nil, &exitError{1, err}
		}
	} else if err := c.fetch(ctx, out, remote); err != nil {
		return nil, err
	}
	m, _, err := out.Check(ctx, backup.CheckOptions{VerifierKey: opts.VerifierKey})
	if errors.Is(err, backup.ErrInvalid) {
		fmt.Fprintf(c.stdout, "FAIL the backup taken does not verify: %v\n", err)
		return nil, &exitError{1, err}
	}
	if err != nil {
		return nil, &exitError{2, err}
	}
	if err := out.Commit(); err != nil {
		return nil, &exitError{2, err}
	}
	return m, nil
}

// fetch reads the server's backup archive into out.
func (c *backupCmd) fetch(ctx context.Context, out *backup.Dir, remote remoteFlags) error {
	cl, err := remote.client()
	if err != nil {
		return err
	}
	defer cl.Close(context.Background())
	body, err := cl.Backup(ctx)
	if err != nil {
		return &exitError{1, err}
	}
	defer body.Close()
	if err := backup.Untar(body, out); err != nil {
		return &exitError{1, fmt.Errorf("%s: %w", remote.serverURL(), err)}
	}
	return nil
}

// backupKey reads the verifier key of --vkey. Without it the checkpoints
// are checked with the source's own key, and the user is told what that
// cannot catch.
func backupKey(stderr io.Writer, source, vkeyFile string) (string, error) {
	if vkeyFile != "" {
		return (&verifyCmd{stderr: stderr}).trustedKey(source, vkeyFile)
	}
	fmt.Fprintf(stderr, "warning: checking the checkpoints with %s's own key (checkpoint.vkey): this cannot detect a history "+
		"rebuilt and re-signed under a new key; pass --vkey FILE with a copy of the key kept apart from the server\n", source)
	return "", nil
}

// inside reports whether path is dir or below it.
func inside(path, dir string) bool {
	p, err1 := filepath.Abs(path)
	d, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && (rel == "." || !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && rel != "..")
}
