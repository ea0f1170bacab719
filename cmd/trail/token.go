package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/trailhq/trail/auth"
	"github.com/trailhq/trail/internal/datadir"
)

// tokenCmd is "trail token create|list|revoke": the principals of a data
// directory. A running server picks changes up within a second. --data must
// be a Trail data directory (one trail serve has started on): a token
// written anywhere else would be honoured by no server.
type tokenCmd struct {
	stdout, stderr io.Writer
}

// patterns is a repeatable flag.
type patterns []string

func (p *patterns) String() string     { return strings.Join(*p, ",") }
func (p *patterns) Set(v string) error { *p = append(*p, v); return auth.CheckPattern(v) }

func (c *tokenCmd) Run(ctx context.Context, args []string) error {
	usage := &exitError{2, errors.New("usage: trail token create|list|revoke --data DIR ...")}
	if len(args) == 0 {
		return usage
	}
	var err error
	switch args[0] {
	case "create":
		err = c.create(args[1:])
	case "list":
		err = c.list(args[1:])
	case "revoke":
		err = c.revoke(args[1:])
	default:
		return usage
	}
	if errors.Is(err, os.ErrPermission) && !errors.Is(err, auth.ErrUnwritten) {
		err = fmt.Errorf("%w (run trail token as the user trail serve runs as, or as root)", err)
	}
	return err
}

func (c *tokenCmd) flags(name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("token "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	return fs, fs.String("data", "./trail-data", "the data directory of the server (made by trail serve, never by trail token)")
}

func (c *tokenCmd) create(args []string) error {
	fs, data := c.flags("create")
	var pr auth.Entry
	fs.StringVar(&pr.Name, "name", "", "principal name (required): 1-128 bytes of A-Z a-z 0-9 . _ : @ -; a client certificate with this subject CN authenticates as it")
	fs.Var((*patterns)(&pr.Append), "append", "may append to streams matching `pattern` (exact, or prefix/*); repeatable")
	fs.Var((*patterns)(&pr.Read), "read", "may read streams matching `pattern` (exact, or prefix/*); repeatable")
	fs.BoolVar(&pr.Admin, "admin", false, "every grant, Trail's own trail/ streams included")
	fs.BoolVar(&pr.BreakGlass, "break-glass", false, "may read beyond its grants with purpose=emergency and a reason (recorded in trail/break-glass)")
	fs.BoolVar(&pr.Review, "review", false, "may read trail/break-glass and trail/review and mark emergency accesses reviewed (POST /v1/reviews), never its own")
	fs.StringVar(&pr.Patient, "patient", "", "a patient's own principal for patient `id`: reads patient/<id> and patient/<id>/…, and the read records naming <id> in trail/access (stream=trail/access&patient=<id>), nothing else")
	expires := fs.String("expires", "", "the token stops working after this `lifetime`: days (90d) or a Go duration (12h, 90m); default never")
	if err := fs.Parse(args); err != nil {
		return &exitError{2, err}
	}
	if pr.Name == "" || fs.NArg() > 0 {
		return &exitError{2, errors.New("usage: trail token create --data DIR --name NAME [--append P]... [--read P]... [--admin] [--break-glass] [--review] [--patient ID] [--expires 90d]")}
	}
	if err := auth.CheckName(pr.Name); err != nil {
		return &exitError{2, err}
	}
	if pr.Patient != "" {
		if err := auth.CheckPatientPrincipal(pr.Principal()); err != nil {
			return &exitError{2, err}
		}
	}
	now := time.Now()
	if *expires != "" {
		d, err := parseLifetime(*expires)
		if err != nil {
			return &exitError{2, err}
		}
		t := now.Add(d)
		pr.Expires = &t
	}
	if err := checkDataDir(*data); err != nil {
		return err
	}
	tok, err := auth.Create(*data, pr, now)
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
	if err := checkDataDir(*data); err != nil {
		return err
	}
	p, err := auth.Load(*data)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tAPPEND\tREAD\tADMIN\tBREAK-GLASS\tREVIEW\tPATIENT\tCREATED\tEXPIRES\tREVOKED")
	now := time.Now()
	for _, pr := range p.Principals {
		revoked, expires := "-", "-"
		if pr.Revoked != nil {
			revoked = pr.Revoked.Format(time.RFC3339)
		}
		if pr.Expires != nil {
			expires = pr.Expires.Format(time.RFC3339)
			if pr.Expired(now) {
				expires += " (expired)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%v\t%v\t%s\t%s\t%s\t%s\n", pr.Name, list(pr.Append), list(pr.Read), pr.Admin, pr.BreakGlass, pr.Review, orDash(pr.Patient),
			pr.Created.Format(time.RFC3339), expires, revoked)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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
	if err := checkDataDir(*data); err != nil {
		return err
	}
	if err := auth.Revoke(*data, fs.Arg(0), time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "revoked %s\n", fs.Arg(0))
	return nil
}

// checkDataDir refuses a --data that is not a Trail data directory (exit 2),
// rather than making a new directory whose tokens no server reads.
func checkDataDir(dir string) error {
	st, err := datadir.Inspect(dir)
	if err == nil && st != datadir.Data {
		err = fmt.Errorf("%s: %w: it holds no %s", dir, datadir.ErrNotData, datadir.Marker)
	}
	if errors.Is(err, datadir.ErrNotData) {
		return &exitError{2, fmt.Errorf("--data %w; name the directory a trail serve uses (trail serve --data DIR makes it on first start)", err)}
	}
	return err
}

// parseLifetime reads --expires: a number of days ("90d") or a Go duration
// ("12h", "1h30m"), more than zero.
func parseLifetime(s string) (time.Duration, error) {
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		n, err = strconv.Atoi(days)
		d = time.Duration(n) * 24 * time.Hour
		if n > 100*366 {
			err = errors.New("too long")
		}
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--expires %q: want a positive number of days such as 90d or a duration such as 12h", s)
	}
	return d, nil
}
