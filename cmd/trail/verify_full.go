package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/trailhq/trail/client"
	"github.com/trailhq/trail/event"
	"github.com/trailhq/trail/internal/checkpoint"
	"github.com/trailhq/trail/verify"
)

// fullPage is how many events --full asks for at a time (the API's most).
const fullPage = 1000

// checkFull is --full: it reads every event the checkpoint cp covers
// (admin, purpose=system, in index order), recomputes each leaf hash and the
// root, and compares it with cp, so that records altered on the server's
// disk are caught from outside. It exits 1 naming the first bad index: one
// the server refuses to serve (its own integrity check, 500), one missing or
// out of place, or, when the root differs, the first one that cannot be
// proven to be cp's (found by consistency proofs: the events before it are
// proven, so the first altered one is it or a later one; it is exact unless
// the server's tree files were altered too, and so its proofs). It keeps the
// leaf hashes in memory, 32 bytes an event.
func (c *verifyCmd) checkFull(ctx context.Context, cl *client.Client, server string, cp checkpoint.Checkpoint) error {
	leaves := make([][]byte, 0, min(cp.Size, 1<<24))
	after := ""
	for uint64(len(leaves)) < cp.Size {
		page, err := cl.Query(ctx, client.Query{After: after, Limit: fullPage, Purpose: "system"})
		if err != nil {
			return c.fullReadError(server, uint64(len(leaves)), err)
		}
		for _, ev := range page.Events {
			n := uint64(len(leaves))
			if n == cp.Size {
				break
			}
			var h struct {
				Index uint64 `json:"index"`
			}
			if err := json.Unmarshal(ev, &h); err != nil || h.Index != n {
				return c.outOfPlace(ctx, cl, server, n, h.Index, err)
			}
			leaf := event.LeafHash(ev)
			leaves = append(leaves, leaf[:])
		}
		if page.Next == "" && uint64(len(leaves)) < cp.Size {
			return c.fail(server, uint64(len(leaves)), fmt.Sprintf("the server's events end at %d, its checkpoint covers %d", len(leaves), cp.Size))
		}
		after = page.Next
	}
	if bytes.Equal(rootOf(leaves), cp.Root) {
		fmt.Fprintf(c.stdout, "read all %d events the checkpoint covers: they hash to its root\n", cp.Size)
		return nil
	}
	bad, err := firstInconsistent(ctx, cl, leaves, cp)
	if err != nil {
		return &exitError{2, fmt.Errorf("the events read do not hash to the checkpoint's root; finding the first bad one: %w", err)}
	}
	return c.fail(server, bad, fmt.Sprintf("the events read do not hash to the signed checkpoint of %d events: those before this one are proven to be "+
		"the checkpoint's, this one is not (it was altered, or the server's tree around it)", cp.Size))
}

// fullReadError turns a failed page read into exit 1 naming the index the
// server refused (500 from its integrity check), or exit 2.
func (c *verifyCmd) fullReadError(server string, from uint64, err error) error {
	var e *client.Error
	if errors.As(err, &e) && e.Status == http.StatusInternalServerError {
		var i uint64
		if _, serr := fmt.Sscanf(e.Detail, "event %d is stored", &i); serr == nil {
			return c.fail(server, i, "the server refuses to serve it: "+e.Detail)
		}
		return c.fail(server, from, fmt.Sprintf("the server cannot serve the events from %d on: %v", from, err))
	}
	return &exitError{2, fmt.Errorf("read events from %d: %w", from, err)}
}

// outOfPlace reports a query page that skipped event n: exit 2 when the
// token may not read it (--full needs the admin's), else exit 1.
func (c *verifyCmd) outOfPlace(ctx context.Context, cl *client.Client, server string, n, got uint64, perr error) error {
	var e *client.Error
	if _, err := cl.Get(ctx, n); errors.As(err, &e) && (e.Status == http.StatusForbidden || e.Status == http.StatusUnauthorized) {
		return &exitError{2, fmt.Errorf("the token may not read event %d (%v): --full needs the admin token", n, err)}
	}
	why := fmt.Sprintf("the server sent, in the place of event %d, an event with index %d: events are missing or out of place", n, got)
	if perr != nil {
		why = fmt.Sprintf("the server sent, in the place of event %d, something that is not an event (%v)", n, perr)
	}
	return c.fail(server, n, why)
}

func (c *verifyCmd) fail(server string, index uint64, why string) error {
	err := &verify.Error{Index: index, Reason: why}
	fmt.Fprintf(c.stdout, "FAIL %s: %v\n", server, err)
	return &exitError{1, err}
}

// rootOf is the RFC 6962 root of the leaf hashes.
func rootOf(leaves [][]byte) []byte {
	if len(leaves) == 0 {
		return rfc6962.DefaultHasher.EmptyRoot()
	}
	rng := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
	for _, l := range leaves {
		rng.Append(l, nil)
	}
	root, _ := rng.GetRootHash(nil)
	return root
}

// firstInconsistent finds the first leaf that cannot be proven to be the
// checkpoint's: for the smallest m whose root of leaves[:m] has no valid
// consistency proof to cp's root, leaf m-1. A server cannot make a proof for
// a wrong root, so every leaf before the answer is genuine whatever it
// sends; a server whose tree is altered can make the answer early.
func firstInconsistent(ctx context.Context, cl *client.Client, leaves [][]byte, cp checkpoint.Checkpoint) (uint64, error) {
	var ferr error
	m := sort.Search(len(leaves), func(k int) bool {
		m := uint64(k + 1)
		if ferr != nil || m == cp.Size {
			return true
		}
		p, err := cl.ConsistencyProof(ctx, m, cp.Size)
		if err != nil {
			ferr = err
			return true
		}
		hashes := make([][]byte, len(p.Hashes))
		for i := range p.Hashes {
			hashes[i] = p.Hashes[i][:]
		}
		return proof.VerifyConsistency(rfc6962.DefaultHasher, m, cp.Size, hashes, rootOf(leaves[:m]), cp.Root) != nil
	})
	return uint64(m), ferr
}
