package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/term"

	"github.com/trailhq/trail/internal/store/postgres"
	"github.com/trailhq/trail/verify"
)

// verifyCmd is "trail verify --data DIR [--vkey FILE] [--state FILE]": exit 0
// when whole, 1 naming the first bad index, 2 when it cannot run. With
// --vkey every checkpoint must be signed by FILE's key; with --state the log
// must extend the checkpoint saved there, and the latest one is saved.
type verifyCmd struct {
	stdout, stderr io.Writer
}

func (c *verifyCmd) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	setUsage(fs, "verify [flags] (--data DIR | --store URL | --server URL --vkey FILE --state FILE)",
		"Checks a data directory offline (--data DIR), the log in PostgreSQL (--store URL), or a server from outside\n(--server URL or $TRAIL_SERVER) against a trusted verifier key and saved checkpoint. Exits 1 when the log does not verify.")
	data := fs.String("data", "", "data directory to verify")
	storeURL := fs.String("store", "", "verify the log in PostgreSQL at this `URL` (read in one snapshot while appends go on)")
	remote := addRemoteFlags(fs)
	vkey := fs.String("vkey", "", "the checkpoint verifier key `file`, a copy of DIR/checkpoint.vkey kept apart from the server")
	state := fs.String("state", "", "`file` holding the last verified checkpoint (created on the first run)")
	full := fs.Bool("full", false, "with --server: also read every event up to the checkpoint and recompute the tree (admin token)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	checkJSON := fs.Bool("check-json", false, "also parse every record as JSON (slower; tampering is caught without it)")
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	usage := &exitError{2, errors.New("usage: trail verify --data DIR [--vkey FILE] [--state FILE], trail verify --store URL [--vkey FILE] [--state FILE], or trail verify --server URL (or $TRAIL_SERVER) --vkey FILE --state FILE [--full]")}
	switch {
	case fs.NArg() > 0 || (*data != "" && isSet(fs, "server")) || (*storeURL != "" && (*data != "" || isSet(fs, "server") || *full)):
		return usage
	case *storeURL != "":
		return c.verifyStore(ctx, *storeURL, *vkey, *state, *quiet)
	case *data == "" && remote.serverURL() != "":
		return c.verifyRemote(ctx, remote, *vkey, *state, *full)
	case *data == "" || *full:
		return usage
	}
	opts := verify.Options{CheckJSON: *checkJSON}
	if f, ok := c.stderr.(*os.File); ok && !*quiet && term.IsTerminal(int(f.Fd())) {
		opts.Progress = progressBar(f)
	}
	return c.verifyData(ctx, *data, *vkey, *state, opts)
}

// verifyData verifies DIR offline, against the key in vkeyFile (or DIR's
// own) and the checkpoint saved in stateFile, if any.
func (c *verifyCmd) verifyData(ctx context.Context, dir, vkeyFile, stateFile string, opts verify.Options) error {
	vkey, err := c.trustedKey(dir, vkeyFile)
	if err != nil {
		return err
	}
	opts.VerifierKey = vkey
	if stateFile != "" {
		if opts.Trusted, err = c.savedCheckpoint(dir, stateFile, vkeyFile, vkey); err != nil {
			return err
		}
	}
	start := time.Now()
	rep, err := verify.Dir(ctx, dir, opts)
	if opts.Progress != nil {
		fmt.Fprintln(c.stderr)
	}
	var ve *verify.Error
	switch {
	case errors.As(err, &ve):
		fmt.Fprintf(c.stdout, "FAIL %s: %v\n", dir, ve)
		return &exitError{1, err}
	case err != nil:
		return &exitError{2, err}
	}
	el := time.Since(start)
	fmt.Fprintf(c.stdout, "OK %s: %d events in %d streams, %d signed checkpoints verified in %v (%.0f events/s)\n",
		dir, rep.Events, rep.Streams, rep.Checkpoints, el.Round(time.Millisecond), float64(rep.Events)/el.Seconds())
	if rep.TornTail != "" {
		fmt.Fprintf(c.stdout, "note: %s\n", rep.TornTail)
	}
	if stateFile == "" {
		return nil
	}
	return c.saveState(stateFile, opts.Trusted, rep.Latest)
}

// verifyStore verifies a log in PostgreSQL against the key in vkeyFile (or
// the one the database records) and the checkpoint saved in stateFile.
func (c *verifyCmd) verifyStore(ctx context.Context, url, vkeyFile, stateFile string, quiet bool) error {
	name := redactURL(url)
	var opts postgres.VerifyOptions
	if vkeyFile == "" {
		if stateFile != "" {
			return &exitError{2, errors.New("--state with --store needs --vkey FILE: the database's own key cannot vouch for its history")}
		}
		fmt.Fprintf(c.stderr, "warning: checking the signatures with the key the database records: this cannot detect a history "+
			"rebuilt and re-signed under a new key; pass --vkey FILE with a copy of the key kept apart from the database, and --state FILE\n")
	} else {
		vkey, err := c.trustedKey(name, vkeyFile)
		if err != nil {
			return err
		}
		opts.VerifierKey = vkey
		if stateFile != "" {
			if opts.Trusted, err = c.savedCheckpoint(name, stateFile, vkeyFile, vkey); err != nil {
				return err
			}
		}
	}
	if f, ok := c.stderr.(*os.File); ok && !quiet && term.IsTerminal(int(f.Fd())) {
		opts.Progress = progressBar(f)
	}
	start := time.Now()
	rep, err := postgres.Verify(ctx, url, opts)
	if opts.Progress != nil {
		fmt.Fprintln(c.stderr)
	}
	var ve *verify.Error
	switch {
	case errors.As(err, &ve):
		fmt.Fprintf(c.stdout, "FAIL %s: %v\n", name, ve)
		return &exitError{1, err}
	case err != nil:
		return &exitError{2, err}
	}
	el := time.Since(start)
	fmt.Fprintf(c.stdout, "OK %s: %d events in %d streams, %d signed checkpoints verified in %v (%.0f events/s)\n",
		name, rep.Events, rep.Streams, rep.Checkpoints, el.Round(time.Millisecond), float64(rep.Events)/el.Seconds())
	if stateFile == "" {
		return nil
	}
	return c.saveState(stateFile, opts.Trusted, rep.Latest)
}

// trustedKey reads the verifier key of --vkey. Without it, verify.Dir uses the
// directory's own key, and the user is told what that cannot catch.
func (c *verifyCmd) trustedKey(dir, vkeyFile string) (string, error) {
	if vkeyFile == "" {
		fmt.Fprintf(c.stderr, "warning: checking the signatures with %s's own key (checkpoint.vkey): this cannot detect a history "+
			"rebuilt and re-signed under a new key; pass --vkey FILE with a copy of the key kept apart from the server, and --state FILE\n", dir)
		return "", nil
	}
	b, err := os.ReadFile(vkeyFile)
	if err != nil {
		return "", &exitError{2, fmt.Errorf("read verifier key: %w", err)}
	}
	if _, err := note.NewVerifier(strings.TrimSpace(string(b))); err != nil {
		return "", &exitError{2, fmt.Errorf("verifier key %s: %w", vkeyFile, err)}
	}
	return string(b), nil
}

// savedCheckpoint reads the checkpoint saved in stateFile (nil on the first
// run). With --vkey it must verify with that key (else the file is of
// another log: exit 2); without, with DIR's own key, so that a key changed
// since the checkpoint was saved is tampering (exit 1).
func (c *verifyCmd) savedCheckpoint(dir, stateFile, vkeyFile, vkey string) (*verify.Checkpoint, error) {
	b, err := os.ReadFile(stateFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &exitError{2, err}
	}
	if vkey != "" {
		cp, err := verify.ParseCheckpoint(b, vkey)
		if err != nil {
			return nil, &exitError{2, fmt.Errorf("saved checkpoint %s does not verify with %s: %w", stateFile, vkeyFile, err)}
		}
		return &cp, nil
	}
	own, err := os.ReadFile(filepath.Join(dir, "checkpoint.vkey"))
	if err != nil {
		return nil, &exitError{2, fmt.Errorf("%s: %w: %v", dir, verify.ErrNotDataDir, err)}
	}
	cp, err := verify.ParseCheckpoint(b, string(own))
	if err != nil {
		err = fmt.Errorf("the checkpoint saved in %s is not signed by %s's key: the log was re-signed under a new key, or %s is of another log: %w",
			stateFile, dir, stateFile, err)
		fmt.Fprintf(c.stdout, "FAIL %s: %v\n", dir, err)
		return nil, &exitError{1, err}
	}
	return &cp, nil
}

// saveState replaces the saved checkpoint with latest when it is newer.
func (c *verifyCmd) saveState(stateFile string, old *verify.Checkpoint, latest verify.Checkpoint) error {
	switch {
	case len(latest.Signed) == 0:
		return nil
	case old != nil && latest.Size < old.Size:
		fmt.Fprintf(c.stdout, "the log extends the checkpoint of %d events saved in %s; kept it\n", old.Size, stateFile)
		return nil
	case old == nil:
		fmt.Fprintf(c.stdout, "saved the checkpoint of %d events to %s (first run: later runs check the log extends it)\n", latest.Size, stateFile)
	default:
		fmt.Fprintf(c.stdout, "the log extends the checkpoint of %d events saved in %s; saved the latest, of %d events\n", old.Size, stateFile, latest.Size)
	}
	if err := writeState(stateFile, latest.Signed); err != nil {
		return &exitError{2, err}
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
