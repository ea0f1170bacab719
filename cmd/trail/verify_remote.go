package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailhq/trail/client"
	"github.com/trailhq/trail/internal/checkpoint"
)

// verifyRemote is "trail verify --server URL --vkey FILE --state FILE
// [--full]": the server's latest checkpoint must carry a valid signature and,
// when FILE holds an earlier one, extend it (a consistency proof from it);
// with --full every event it covers must hash to its root (verify_full.go);
// then FILE holds the new one. A log that rewrote or dropped history fails
// here.
func (c *verifyCmd) verifyRemote(ctx context.Context, remote remoteFlags, vkeyFile, stateFile string, full bool) error {
	if vkeyFile == "" || stateFile == "" {
		return &exitError{2, errors.New("usage: trail verify --server URL (or $TRAIL_SERVER) --vkey FILE --state FILE [--full] checks a server; " +
			"trail verify --data DIR (or --store URL) checks a data directory (or PostgreSQL) instead")}
	}
	if full {
		if err := remote.checkToken(); err != nil { // --full reads every event
			return err
		}
	}
	vkey, err := os.ReadFile(vkeyFile)
	if err != nil {
		return &exitError{2, fmt.Errorf("read verifier key: %w", err)}
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
	if err != nil {
		return &exitError{2, fmt.Errorf("verifier key %s: %w", vkeyFile, err)}
	}
	var old *checkpoint.Checkpoint
	if b, err := os.ReadFile(stateFile); err == nil {
		cp, err := checkpoint.Parse(b, v)
		if err != nil {
			return &exitError{2, fmt.Errorf("saved checkpoint %s does not verify with %s: %w", stateFile, vkeyFile, err)}
		}
		old = &cp
	} else if !errors.Is(err, os.ErrNotExist) {
		return &exitError{2, err}
	}
	cl, err := remote.client()
	if err != nil {
		return err
	}
	defer cl.Close(context.Background())
	signed, err := cl.Checkpoint(ctx)
	if err != nil {
		return &exitError{2, err}
	}
	cp, err := checkpoint.Parse(signed, v)
	if err != nil {
		fmt.Fprintf(c.stdout, "FAIL %s: checkpoint signature: %v\n", remote.serverURL(), err)
		return &exitError{1, err}
	}
	if old != nil {
		if err := c.checkConsistent(ctx, cl, *old, cp); err != nil {
			fmt.Fprintf(c.stdout, "FAIL %s: %v\n", remote.serverURL(), err)
			return &exitError{1, err}
		}
	}
	if full {
		if err := c.checkFull(ctx, cl, remote.serverURL(), cp); err != nil {
			return err
		}
	}
	if err := writeState(stateFile, signed); err != nil {
		return &exitError{2, err}
	}
	if old == nil {
		fmt.Fprintf(c.stdout, "OK %s: checkpoint of %d events verified and saved to %s (first run: later runs check it is extended)\n", remote.serverURL(), cp.Size, stateFile)
	} else {
		fmt.Fprintf(c.stdout, "OK %s: checkpoint of %d events extends the saved one of %d events; saved\n", remote.serverURL(), cp.Size, old.Size)
	}
	return nil
}

// checkConsistent checks that cp extends old.
func (c *verifyCmd) checkConsistent(ctx context.Context, cl *client.Client, old, cp checkpoint.Checkpoint) error {
	switch {
	case old.Origin != cp.Origin:
		return fmt.Errorf("the server's log is %q, the saved checkpoint is of %q", cp.Origin, old.Origin)
	case cp.Size < old.Size:
		return fmt.Errorf("the server's checkpoint has %d events, fewer than the %d of the saved one: history was dropped", cp.Size, old.Size)
	case cp.Size == old.Size:
		if !bytes.Equal(cp.Root, old.Root) {
			return fmt.Errorf("the server's checkpoint of %d events has another root than the saved one: history was rewritten", cp.Size)
		}
		return nil
	}
	p, err := cl.ConsistencyProof(ctx, old.Size, cp.Size)
	if err != nil {
		return fmt.Errorf("consistency proof from %d to %d: %w", old.Size, cp.Size, err)
	}
	hashes := make([][]byte, len(p.Hashes))
	for i := range p.Hashes {
		hashes[i] = p.Hashes[i][:]
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old.Size, cp.Size, hashes, old.Root, cp.Root); err != nil {
		return fmt.Errorf("the checkpoint of %d events does not extend the saved one of %d: %w", cp.Size, old.Size, err)
	}
	return nil
}

// writeState replaces file with data atomically: write a temporary file,
// fsync, rename.
func writeState(file string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), ".trail-state-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}
