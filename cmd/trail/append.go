package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/trailhq/trail"
)

// appendCmd is "trail append": events as JSON arguments or NDJSON on stdin
// (or --file), receipts as NDJSON on stdout, in input order.
type appendCmd struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

func (c *appendCmd) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("append", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	setUsage(fs, "append [flags] [EVENT-JSON...]",
		"Appends events, given as JSON arguments or (no argument) as NDJSON on stdin, and prints their receipts as NDJSON.")
	remote := addRemoteFlags(fs)
	file := fs.String("file", "", "read NDJSON events from `file` instead of stdin")
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	if fs.NArg() == 0 && *file == "" {
		// Say what is missing before waiting on stdin.
		if err := remote.checkToken(); err != nil {
			return err
		}
	}
	evs, err := c.readEvents(fs.Args(), *file)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	cl, err := remote.authClient()
	if err != nil {
		return err
	}
	defer cl.Close(context.Background())
	pend := make([]*trail.Pending, len(evs))
	for i, ev := range evs {
		if pend[i], err = cl.Enqueue(ctx, ev); err != nil {
			return err
		}
	}
	out := bufio.NewWriter(c.stdout)
	defer out.Flush()
	failed := 0
	for i, p := range pend {
		r, err := p.Wait(ctx)
		if err != nil {
			failed++
			fmt.Fprintf(c.stderr, "event %d: %v\n", i+1, err)
			continue
		}
		b, _ := json.Marshal(r)
		out.Write(append(b, '\n'))
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d events not stored", failed, len(evs))
	}
	return nil
}

// readEvents parses every event before any is sent, so that a typo on line
// 900 does not leave lines 1-899 stored.
func (c *appendCmd) readEvents(args []string, file string) ([]trail.Event, error) {
	var evs []trail.Event
	if len(args) > 0 {
		for i, a := range args {
			ev, err := trail.ParseEvent([]byte(a))
			if err != nil {
				return nil, fmt.Errorf("argument %d: %w", i+1, err)
			}
			evs = append(evs, ev)
		}
		return evs, nil
	}
	in := c.stdin
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		in = f
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), trail.MaxEventSize+1)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		ev, err := trail.ParseEvent(b)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w (nothing was sent)", line, err)
		}
		evs = append(evs, ev)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w (nothing was sent)", err)
	}
	if len(evs) == 0 {
		return nil, fmt.Errorf("no events: pass JSON events as arguments or NDJSON on stdin")
	}
	return evs, nil
}
