package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/trailhq/trail/client"
)

// queryCmd is "trail query": matching stored events as NDJSON, each line
// exactly the stored bytes.
type queryCmd struct {
	stdout, stderr io.Writer
}

func (c *queryCmd) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	setUsage(fs, "query [flags]", "Prints the stored events that match the flags as NDJSON (the stored bytes), oldest first unless --desc.")
	remote := addRemoteFlags(fs)
	var q client.Query
	fs.StringVar(&q.Stream, "stream", "", "exact stream")
	fs.StringVar(&q.Patient, "patient", "", "patient")
	fs.StringVar(&q.Actor, "actor", "", "actor.id")
	fs.StringVar(&q.Type, "type", "", "event type")
	fs.StringVar(&q.Action, "action", "", "C, R, U, D or E")
	fs.StringVar(&q.Outcome, "outcome", "", "success, minor-failure, serious-failure or major-failure")
	since := fs.String("since", "", "recorded at or after this RFC 3339 time")
	until := fs.String("until", "", "recorded before this RFC 3339 time")
	fs.StringVar(&q.After, "after", "", "cursor: continue after this one (printed on stderr when more remain)")
	fs.IntVar(&q.Limit, "limit", 100, "events per page (1-1000)")
	desc := fs.Bool("desc", false, "newest first")
	all := fs.Bool("all", false, "follow the cursor to the last page")
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	q.Desc = *desc
	for _, t := range []struct {
		s   string
		dst *time.Time
	}{{*since, &q.Since}, {*until, &q.Until}} {
		if t.s == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339Nano, t.s)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("%q is not an RFC 3339 time such as 2026-11-25T10:00:00Z", t.s)}
		}
		*t.dst = v
	}
	cl, err := remote.authClient()
	if err != nil {
		return err
	}
	defer cl.Close(context.Background())
	out := bufio.NewWriter(c.stdout)
	defer out.Flush()
	for {
		page, err := cl.Query(ctx, q)
		if err != nil {
			return err
		}
		for _, e := range page.Events {
			out.Write(e)
			out.WriteByte('\n')
		}
		if page.Next == "" {
			return nil
		}
		if !*all {
			out.Flush()
			fmt.Fprintf(c.stderr, "more: --after %s\n", page.Next)
			return nil
		}
		q.After = page.Next
	}
}
