package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/trailhq/trail/internal/access"
)

// tokenCmd is "trail token create|list|revoke": the principals of a data
// directory. A running server picks changes up within a second.
type tokenCmd struct {
	stdout, stderr io.Writer
}

// patterns is a repeatable flag.
type patterns []string

func (p *patterns) String() string     { return strings.Join(*p, ",") }
func (p *patterns) Set(v string) error { *p = append(*p, v); return access.CheckPattern(v) }

func (c *tokenCmd) Run(ctx context.Context, args []string) error {
	usage := &exitError{2, errors.New("usage: trail token create|list|revoke --data DIR ...")}
	if len(args) == 0 {
		return usage
	}
	switch args[0] {
	case "create":
		return c.create(args[1:])
	case "list":
		return c.list(args[1:])
	case "revoke":
		return c.revoke(args[1:])
	}
	return usage
}

func (c *tokenCmd) flags(name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("token "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	return fs, fs.String("data", "./trail-data", "data directory")
}

func (c *tokenCmd) create(args []string) error {
	fs, data := c.flags("create")
	var pr access.Principal
	fs.StringVar(&pr.Name, "name", "", "principal name (required): 1-128 bytes of A-Z a-z 0-9 . _ : @ -; a client certificate with this subject CN authenticates as it")
	fs.Var((*patterns)(&pr.Append), "append", "may append to streams matching `pattern` (exact, or prefix/*); repeatable")
	fs.Var((*patterns)(&pr.Read), "read", "may read streams matching `pattern` (exact, or prefix/*); repeatable")
	fs.BoolVar(&pr.Admin, "admin", false, "every grant, Trail's own trail/ streams included")
	fs.BoolVar(&pr.BreakGlass, "break-glass", false, "may read beyond its grants with purpose=emergency and a reason (recorded in trail/break-glass)")
	if err := fs.Parse(args); err != nil {
		return &exitError{2, err}
	}
	if pr.Name == "" || fs.NArg() > 0 {
		return &exitError{2, errors.New("usage: trail token create --data DIR --name NAME [--append P]... [--read P]... [--admin] [--break-glass]")}
	}
	tok, err := access.Create(*data, pr, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, tok)
	return nil
}

func (c *tokenCmd) list(args []string) error {
	fs, data := c.flags("list")
	if err := fs.Parse(args); err != nil {
		return &exitError{2, err}
	}
	p, err := access.Load(*data)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tAPPEND\tREAD\tADMIN\tBREAK-GLASS\tCREATED\tREVOKED")
	for _, pr := range p.Principals {
		revoked := "-"
		if pr.Revoked != nil {
			revoked = pr.Revoked.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%v\t%s\t%s\n", pr.Name, list(pr.Append), list(pr.Read), pr.Admin, pr.BreakGlass,
			pr.Created.Format(time.RFC3339), revoked)
	}
	return tw.Flush()
}

func list(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}

func (c *tokenCmd) revoke(args []string) error {
	fs, data := c.flags("revoke")
	if err := fs.Parse(args); err != nil {
		return &exitError{2, err}
	}
	if fs.NArg() != 1 {
		return &exitError{2, errors.New("usage: trail token revoke --data DIR NAME")}
	}
	if err := access.Revoke(*data, fs.Arg(0), time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "revoked %s\n", fs.Arg(0))
	return nil
}
