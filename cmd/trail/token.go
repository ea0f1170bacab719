package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/trailhq/trail/auth"
	"github.com/trailhq/trail/internal/datadir"
	"github.com/trailhq/trail/internal/store/postgres/principals"
)

// tokenCmd is "trail token create|list|revoke": the principals of a data
// directory, or with --store URL those of a log in PostgreSQL, which every
// trail serve --store on it honours. A running server picks changes up
// within a second. --data must be a Trail data directory (one trail serve
// has started on), and --store a database one has: a token written anywhere
// else would be honoured by no server.
type tokenCmd struct {
	stdout, stderr io.Writer
}

// patterns is a repeatable flag.
type patterns []string

func (p *patterns) String() string     { return strings.Join(*p, ",") }
func (p *patterns) Set(v string) error { *p = append(*p, v); return auth.CheckPattern(v) }

// tokenSynopsis and tokenAbout are the usage texts of trail token's
// subcommands.
var (
	tokenSynopsis = map[string]string{
		"create": "token create [flags] --name NAME",
		"list":   "token list [flags]",
		"revoke": "token revoke [flags] NAME",
	}
	tokenAbout = map[string]string{
		"create": "Creates a principal in a data directory (--data) or in PostgreSQL (--store) and prints its token.",
		"list":   "Lists the principals of a data directory (--data) or of PostgreSQL (--store).",
		"revoke": "Revokes the principal NAME: its token stops working.",
	}
)

func (c *tokenCmd) Run(ctx context.Context, args []string) error {
	usage := &exitError{2, errors.New("usage: trail token create|list|revoke --data DIR|--store URL ...")}
	if len(args) == 0 {
		return usage
	}
	var err error
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(c.stderr, `Usage: trail token create|list|revoke [flags] ...

Creates, lists or revokes the principals of a data directory (--data DIR) or
of the log in PostgreSQL (--store URL).

Run "trail token <create|list|revoke> -h" for a subcommand's flags.
`)
		return flag.ErrHelp
	case "create":
		err = c.create(ctx, args[1:])
	case "list":
		err = c.list(ctx, args[1:])
	case "revoke":
		err = c.revoke(ctx, args[1:])
	default:
		return usage
	}
	if errors.Is(err, os.ErrPermission) && !errors.Is(err, auth.ErrUnwritten) {
		err = fmt.Errorf("%w (run trail token as the user trail serve runs as, or as root)", err)
	}
	return err
}

// where names the principals a command changes: a data directory's, or
// those of a log in PostgreSQL.
type where struct {
	fs    *flag.FlagSet
	data  *string
	store *string
}

func (c *tokenCmd) flags(name string) (*flag.FlagSet, *where) {
	fs := flag.NewFlagSet("token "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	setUsage(fs, tokenSynopsis[name], tokenAbout[name])
	return fs, &where{fs: fs,
		data:  fs.String("data", "./trail-data", "the data directory of the server (made by trail serve, never by trail token)"),
		store: fs.String("store", "", "the principals of the log in PostgreSQL at this `URL` (the one trail serve --store serves; made by trail serve, never by trail token), instead of --data"),
	}
}

// check refuses --data and --store together, and a --data that is no data
// directory (exit 2).
func (w *where) check() error {
	if *w.store != "" {
		data := false
		w.fs.Visit(func(f *flag.Flag) { data = data || f.Name == "data" })
		if data {
			return &exitError{2, errors.New("--data and --store: give one (with --store the principals are the database's)")}
		}
		return nil
	}
	return checkDataDir(*w.data)
}

// principals connects to the database of --store.
func (w *where) principals(ctx context.Context) (*principals.Source, error) {
	p, err := principals.Open(ctx, *w.store)
	if errors.Is(err, principals.ErrNoLog) {
		err = &exitError{2, fmt.Errorf("--store %w", err)}
	}
	return p, err
}

// changedBy names who changes the policy in the database's history.
func changedBy(verb string) string {
	who := "unknown"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("trail token %s (%s@%s)", verb, who, host)
}

func (c *tokenCmd) create(ctx context.Context, args []string) error {
	fs, data := c.flags("create")
	var pr auth.Entry
	fs.StringVar(&pr.Name, "name", "", "principal name (required): 1-128 bytes of A-Z a-z 0-9 . _ : @ -; a client certificate with this subject CN authenticates as it")
	fs.Var((*patterns)(&pr.Append), "append", "may append to streams matching `pattern` (exact, or prefix/*); repeatable")
	fs.Var((*patterns)(&pr.Read), "read", "may read streams matching `pattern` (exact, or prefix/*); repeatable")
	fs.BoolVar(&pr.Admin, "admin", false, "every grant, Trail's own trail/ streams included")
	fs.BoolVar(&pr.BreakGlass, "break-glass", false, "may read beyond its grants with purpose=emergency and a reason (recorded in trail/break-glass)")
	fs.BoolVar(&pr.Review, "review", false, "may read trail/break-glass and trail/review and mark emergency accesses reviewed (POST /v1/reviews), never its own")
	fs.StringVar(&pr.Patient, "patient", "", "a patient's own principal for patient `id`: reads patient/<id> and patient/<id>/…, and the read records naming <id> in trail/access (stream=trail/access&patient=<id>), nothing else")
	fs.StringVar(&pr.Role, "role", "", "what the principal is, e.g. physician (1-64 bytes of printable text): every read record of its reads carries it as actor.role, and the console's list of who accessed a record shows it; grants nothing")
	expires := fs.String("expires", "", "the token stops working after this `lifetime`: days (90d) or a Go duration (12h, 90m); default never")
	if err := fs.Parse(args); err != nil {
		return &exitError{2, err}
	}
	if pr.Name == "" && fs.NArg() == 0 {
		return &exitError{2, errors.New("--name is required; usage: trail token create --data DIR|--store URL --name NAME ...")}
	}
	if pr.Name == "" || fs.NArg() > 0 {
		return &exitError{2, errors.New("usage: trail token create --data DIR|--store URL --name NAME [--append P]... [--read P]... [--admin] [--break-glass] [--review] [--patient ID] [--role TEXT] [--expires 90d]")}
	}
	if err := auth.CheckName(pr.Name); err != nil {
		return &exitError{2, err}
	}
	role := false
	fs.Visit(func(f *flag.Flag) { role = role || f.Name == "role" })
	if role {
		if err := auth.CheckRole(pr.Role); err != nil {
			return &exitError{2, fmt.Errorf("--role: %w", err)}
		}
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
	if err := data.check(); err != nil {
		return err
	}
	var tok string
	var err error
	if *data.store != "" {
		p, perr := data.principals(ctx)
		if perr != nil {
			return perr
		}
		defer p.Close()
		tok, err = auth.CreateIn(p.Updater(ctx, changedBy("create")), pr, now)
	} else {
		tok, err = auth.Create(*data.data, pr, now)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, tok)
	return nil
}

func (c *tokenCmd) list(ctx context.Context, args []string) error {
	fs, data := c.flags("list")
	if err := fs.Parse(args); err != nil {
		return &exitError{2, err}
	}
	if err := data.check(); err != nil {
		return err
	}
	var p auth.Policy
	var err error
	if *data.store != "" {
		src, perr := data.principals(ctx)
		if perr != nil {
			return perr
		}
		defer src.Close()
		p, _, err = src.Load(ctx)
	} else {
		p, err = auth.Load(*data.data)
	}
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tAPPEND\tREAD\tADMIN\tBREAK-GLASS\tREVIEW\tPATIENT\tROLE\tCREATED\tEXPIRES\tREVOKED")
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%v\t%v\t%s\t%s\t%s\t%s\t%s\n", pr.Name, list(pr.Append), list(pr.Read), pr.Admin, pr.BreakGlass, pr.Review, orDash(pr.Patient),
			orDash(pr.Role), pr.Created.Format(time.RFC3339), expires, revoked)
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

func (c *tokenCmd) revoke(ctx context.Context, args []string) error {
	fs, data := c.flags("revoke")
	if err := fs.Parse(args); err != nil {
		return &exitError{2, err}
	}
	if fs.NArg() != 1 {
		return &exitError{2, errors.New("usage: trail token revoke --data DIR|--store URL NAME")}
	}
	if err := data.check(); err != nil {
		return err
	}
	var err error
	if *data.store != "" {
		p, perr := data.principals(ctx)
		if perr != nil {
			return perr
		}
		defer p.Close()
		err = auth.RevokeIn(p.Updater(ctx, changedBy("revoke")), fs.Arg(0), time.Now())
	} else {
		err = auth.Revoke(*data.data, fs.Arg(0), time.Now())
	}
	if err != nil {
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
