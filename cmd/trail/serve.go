package main

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/trailhq/trail/internal/checkpoint"
	"github.com/trailhq/trail/internal/durable"
	"github.com/trailhq/trail/internal/store/postgres"
	"github.com/trailhq/trail/internal/store/postgres/principals"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/auth"
	"github.com/trailhq/trail/internal/datadir"
	"github.com/trailhq/trail/server"
)

// serveCmd is "trail serve": the daemon.
type serveCmd struct {
	stdout, stderr io.Writer
}

func (c *serveCmd) Run(ctx context.Context, args []string) error {
	o := newServeFlags(c.stderr)
	if err := o.parse(args, os.Environ()); err != nil {
		return err
	}
	fs := o.fs
	data, listen, sync, origin, storeURL, signingKey := o.data, o.listen, o.sync, o.origin, o.storeURL, o.signingKey
	interval, queueWait, notifyURL := o.interval, o.queueWait, o.notifyURL
	tlsFiles, limits, sl, oidcFlags := &o.tlsFiles, o.limits, o.sl, o.oidc
	scfg, err := limits.config()
	if err != nil {
		return &exitError{2, err}
	}
	scfg.Notify.URL = *notifyURL
	if err := scfg.Notify.Validate(); err != nil {
		return &exitError{2, fmt.Errorf("--notify-url: %w", err)}
	}
	if scfg.Console.OIDC, err = oidcFlags.config(); err != nil {
		return &exitError{2, err}
	}
	sysCfg, withSyslog, err := sl.config()
	if err != nil {
		return &exitError{2, err}
	}
	if fs.NArg() > 0 {
		return &exitError{2, fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if err := checkSync(*sync); err != nil {
		return err
	}
	if err := checkServeDir(*data); err != nil {
		return err
	}
	switch {
	case *storeURL != "" && *signingKey == "":
		return &exitError{2, errors.New("--store needs --signing-key FILE: the key every process sharing the database signs checkpoints with")}
	case *storeURL == "" && *signingKey != "":
		return &exitError{2, errors.New("--signing-key goes with --store (a data directory keeps its own key)")}
	case *o.maxHeads < 1:
		return &exitError{2, fmt.Errorf("--max-stream-heads %d: want at least 1", *o.maxHeads)}
	case *storeURL != "" && *sync != "always":
		return &exitError{2, errors.New("--sync: with --store every receipt follows a COMMIT with synchronous_commit on")}
	}
	logger := slog.New(slog.NewTextHandler(c.stderr, nil))
	cfg := trail.DefaultConfig()
	cfg.Sync = trail.SyncMode(*sync)
	cfg.Origin = *origin
	cfg.CheckpointInterval = *interval
	cfg.MaxStreamHeads = *o.maxHeads
	cfg.Logger = logger
	var tlsFilesP *server.TLSFiles
	switch {
	case tlsFiles.Cert != "" && tlsFiles.Key != "":
		tlsFilesP = tlsFiles
	case tlsFiles.Cert != "" || tlsFiles.Key != "" || tlsFiles.ClientCA != "" || tlsFiles.LegacyRSA:
		return &exitError{2, errors.New("--tls-cert and --tls-key go together (and --client-ca and --tls-legacy-rsa need both)")}
	}
	if withSyslog && sysCfg.TLSAddr != "" {
		if tlsFilesP == nil {
			return &exitError{2, errors.New("--syslog-tls needs --tls-cert, --tls-key and --client-ca (the CA bundle that signs the senders' certificates)")}
		}
		if sysCfg.TLS, err = tlsFiles.SyslogConfig(); err != nil {
			return &exitError{2, err}
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	scfg.Logger, scfg.QueueWait = logger, *queueWait
	var st *storeOpts
	if *storeURL != "" {
		st = &storeOpts{url: *storeURL, keyFile: *signingKey}
	}
	d, err := startDaemon(*data, st, cfg, scfg, ln, tlsFilesP)
	if err != nil {
		return err
	}
	var syslogAddrs []any
	if withSyslog {
		if d.syslog, err = d.srv.StartSyslog(sysCfg); err != nil {
			d.stop(context.Background())
			return &exitError{2, err}
		}
		for _, tr := range []string{server.TransportTLS, server.TransportTCP, server.TransportUDP} {
			if a := d.syslog.Addr(tr); a != nil {
				syslogAddrs = append(syslogAddrs, "syslog_"+tr, a.String())
			}
		}
	}
	abs, _ := filepath.Abs(*data)
	scheme := "http://"
	if tlsFilesP != nil {
		scheme = "https://"
	}
	if d.tokenCreated {
		logger.Info("admin token created; keep it secret", "file", filepath.Join(abs, auth.AdminTokenFile))
	}
	warnPlainHTTP(logger, ln.Addr(), tlsFilesP != nil) // before the line that says it serves, which scripts wait for
	where := []any{"data", abs}
	if st != nil {
		info := d.l.Store(ctx)
		where = append(where, "store", redactURL(st.url))
		if info.Mode == "synchronous" {
			logger.Info("database replication", "mode", info.Mode, "detail", info.Replication)
		} else {
			logger.Warn("database replication: only synchronous replication keeps every acknowledged event across a failover",
				"mode", info.Mode, "detail", info.Replication)
		}
	}
	logger.Info("trail serving", append(append(where, "listen", scheme+ln.Addr().String(),
		"console", scheme+ln.Addr().String()+"/ui/", "fhir", scheme+ln.Addr().String()+"/fhir",
		"verifier_key", d.l.VerifierKey(), "checkpoint_origin", d.l.Checkpoint().Origin), syslogAddrs...)...)
	select {
	case <-ctx.Done():
		logger.Info("stopping: draining requests, then a final checkpoint")
	case err := <-d.errc:
		logger.Error("server stopped", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.stop(sctx); err != nil {
		return err
	}
	logger.Info("stopped", "events", d.l.Size())
	return nil
}

// serveFlags are the flags of trail serve, parsed.
type serveFlags struct {
	fs                                                          *flag.FlagSet
	data, listen, sync, origin, storeURL, signingKey, notifyURL *string
	interval, queueWait                                         *time.Duration
	maxHeads                                                    *int
	tlsFiles                                                    server.TLSFiles
	limits                                                      serveLimits
	sl                                                          serveSyslog
	oidc                                                        serveOIDC
}

// newServeFlags defines the flags of trail serve; usage goes to stderr.
func newServeFlags(stderr io.Writer) *serveFlags {
	o := &serveFlags{fs: flag.NewFlagSet("serve", flag.ContinueOnError)}
	fs := o.fs
	fs.SetOutput(stderr)
	o.data = fs.String("data", "./trail-data", "data directory (created mode 0700 on first start; an existing one must be 0700, and empty or a Trail data directory)")
	o.listen = fs.String("listen", "127.0.0.1:7070", "address to listen on")
	o.sync = fs.String("sync", "always", "always: a receipt means fsynced; none: do not wait for the disk (loses acknowledged events on power loss)")
	o.origin = fs.String("origin", "", "checkpoint origin, fixed at first start (default trail/<random>)")
	o.storeURL = fs.String("store", "", "keep the log and its principals in PostgreSQL at this `URL` (postgres://user@host/db) instead of --data; several trail serve processes may share one (the process that makes the database writes the admin token to --data; manage principals with trail token --store)")
	o.signingKey = fs.String("signing-key", "", "with --store: the checkpoint signing key `file` the processes share (created, mode 0600, when missing); it never goes into the database")
	o.interval = fs.Duration("checkpoint-interval", time.Second, "how often a checkpoint is signed when the log has grown")
	o.maxHeads = fs.Int("max-stream-heads", 100_000, "streams whose last event is kept in memory (about 136 bytes each); others are looked up in the index on their next event")
	o.queueWait = fs.Duration("queue-wait", time.Second, "how long an append waits for room in a full queue before 503")
	fs.StringVar(&o.tlsFiles.Cert, "tls-cert", "", "serve HTTPS (TLS 1.2 and 1.3, ECDHE suites only) with this PEM certificate chain `file` (re-read when it changes)")
	fs.StringVar(&o.tlsFiles.Key, "tls-key", "", "the PEM private key `file` of --tls-cert")
	fs.StringVar(&o.tlsFiles.ClientCA, "client-ca", "", "accept client certificates signed by the CAs in this PEM `file`; the subject CN names the principal")
	fs.BoolVar(&o.tlsFiles.LegacyRSA, "tls-legacy-rsa", false, "also accept TLS 1.2 with RSA key exchange (no forward secrecy), for old IHE ATNA senders that offer nothing else")
	o.notifyURL = fs.String("notify-url", "", "POST each emergency access (each record of trail/break-glass) as JSON to this http(s) `URL` as it happens, in the background, with retries")
	o.limits.flags(fs)
	o.sl.flags(fs)
	o.oidc.flags(fs)
	fs.String("config", "", "read flags from this TOML `file`, or YAML when it ends in .yaml or .yml (keys are flag names: listen = \"0.0.0.0:7070\"; default $TRAIL_CONFIG)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: trail serve [flags]\n\nServes the Trail API over HTTP(S) and, when asked, receives IHE ATNA audit messages by syslog.\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), configUsage)
		fmt.Fprint(fs.Output(), syslogUsage)
	}
	return o
}

// parse sets the flags from args, then from the TRAIL_ variables of
// environ, then from the --config file.
func (o *serveFlags) parse(args, environ []string) error {
	return parseConfigured(o.fs, args, environ, "config")
}

// configUsage is the part of trail serve --help about the environment and
// the config file.
const configUsage = `
Every flag may also come from the environment, as TRAIL_ and its name in
capitals with underscores (--read-rate: TRAIL_READ_RATE=100:400), or from
the TOML file --config or TRAIL_CONFIG names, as a key named after it
(read-rate = "100:400"; a repeatable flag takes an array:
trusted-proxy = ["10.0.0.0/8"]); a file whose name ends in .yaml or .yml
is YAML with the same keys (read-rate: "100:400"). A flag on the command
line wins over the environment, which wins over the file. Unknown keys in
the file are errors; empty variables count as unset.
`

// daemon is an engine served over HTTP.
type daemon struct {
	l            *trail.Log
	srv          *server.Server
	http         *http.Server
	token        auth.Token
	auth         *auth.TokenAuth        // nil when the caller gave its own
	principals   *principals.Source     // with --store
	syslog       *server.SyslogReceiver // nil without syslog listeners
	tokenCreated bool
	errc         chan error
}

// storeOpts name a log in PostgreSQL.
type storeOpts struct {
	url     string
	keyFile string
}

// startDaemon opens the engine in dir (or in the database st names) and
// serves it on ln (over TLS when tlsFiles is set). Unless scfg names an
// authenticator, principals come from the admin token and DIR/tokens.json,
// or with st from the database (see storeAuth).
func startDaemon(dir string, st *storeOpts, cfg trail.Config, scfg server.Config, ln net.Listener, tlsFiles *server.TLSFiles) (*daemon, error) {
	var tlsConf *tls.Config
	if tlsFiles != nil {
		var err error
		if tlsConf, err = tlsFiles.Config(); err != nil {
			ln.Close()
			return nil, err
		}
	}
	l, err := openLog(dir, st, cfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	d := &daemon{l: l, errc: make(chan error, 1)}
	fail := func(err error) (*daemon, error) {
		ln.Close()
		if d.auth != nil {
			d.auth.Close()
		}
		if d.principals != nil {
			d.principals.Close()
		}
		l.Close(context.Background())
		return nil, err
	}
	if st != nil {
		if err := d.storeAuth(dir, st, cfg.Logger); err != nil {
			return fail(err)
		}
		if scfg.Console.Sessions == nil {
			scfg.Console.Sessions = d.principals.Sessions()
		}
		if scfg.Console.FlowKey == nil {
			if scfg.Console.FlowKey, err = flowKey(st.keyFile); err != nil {
				return fail(err)
			}
		}
		if scfg.Auth == nil {
			scfg.Auth = d.auth
		} else {
			d.auth.Close()
			d.auth = nil
		}
	} else if d.token, d.tokenCreated, err = auth.EnsureAdminToken(dir); err != nil {
		return fail(err)
	}
	if scfg.Auth == nil {
		if d.auth, err = auth.NewTokenAuth(dir, d.token, cfg.Logger); err != nil {
			return fail(err)
		}
		scfg.Auth = d.auth
	}
	if d.srv, err = server.New(l, scfg); err != nil {
		return fail(err)
	}
	d.http = httpServer(d.srv.Handler(), tlsConf, cfg.Logger)
	go func() {
		var err error
		if tlsConf != nil {
			err = d.http.ServeTLS(ln, "", "")
		} else {
			err = d.http.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			d.errc <- err
		}
	}()
	return d, nil
}

// Connection timeouts of trail serve: a request's headers must arrive
// within headerTimeout, and an idle keep-alive connection is closed after
// idleTimeout. (Bodies have their own, --body-timeout, in the handler.)
const (
	headerTimeout = 10 * time.Second
	idleTimeout   = 2 * time.Minute
)

// httpServer is the HTTP server trail serve runs h in.
func httpServer(h http.Handler, tlsConf *tls.Config, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: headerTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		TLSConfig:         tlsConf,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// storeAuth authenticates with the principals of the database st names:
// the admin token whose hash the process that made the database recorded
// (it wrote the token to its DIR/admin.token), and the policy in force,
// looked at every auth.PolicyReload. A log kept there before its principals
// were takes DIR/tokens.json as its first policy.
func (d *daemon) storeAuth(dir string, st *storeOpts, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	if d.principals, err = principals.Open(ctx, st.url); err != nil {
		return err
	}
	admin, created, err := d.principals.EnsureAdmin(ctx, dir, logger)
	if err != nil {
		return err
	}
	d.tokenCreated = created
	if b, err := os.ReadFile(filepath.Join(dir, auth.AdminTokenFile)); err == nil {
		if tok := auth.Token(strings.TrimSpace(string(b))); auth.HashToken(tok) == admin {
			d.token = tok
		}
	}
	tokensFile := filepath.Join(dir, auth.TokensFile)
	if imported, err := d.principals.ImportFile(ctx, dir, "trail serve: "+tokensFile); err != nil {
		return fmt.Errorf("%s: %w", tokensFile, err)
	} else if imported {
		logger.Info("the principals of the tokens file are the log's first policy in the database; manage them with trail token --store", "file", tokensFile)
	} else if _, err := os.Stat(tokensFile); err == nil {
		logger.Warn("with --store the principals are the database's: this tokens file is not read (trail token --store URL manages them)", "file", tokensFile)
	}
	d.auth, err = auth.NewTokenAuthFrom(d.principals, admin, logger)
	return err
}

// openLog opens the engine on the data directory, or on the PostgreSQL
// database st names with the shared signing key (made when missing, named
// after cfg.Origin).
func openLog(dir string, st *storeOpts, cfg trail.Config) (*trail.Log, error) {
	if st == nil {
		return trail.Open(dir, cfg)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if _, err := os.Stat(st.keyFile); errors.Is(err, os.ErrNotExist) {
		origin := cfg.Origin
		if origin == "" {
			var b [6]byte
			rand.Read(b[:])
			origin = "trail/" + hex.EncodeToString(b[:])
		}
		if err := checkpoint.CreateKeyFile(st.keyFile, origin); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, err
		}
		cfg.Logger.Info("signing key created; give every process sharing the database a copy, and keep one apart", "file", st.keyFile)
	}
	signer, vkey, err := checkpoint.LoadKey(st.keyFile)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ps, err := postgres.Open(ctx, postgres.Options{URL: st.url, Signer: signer, VerifierKey: vkey, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	// The data directory (tokens, admin token) names the log it serves by
	// its verifier key, as a directory holding the log does.
	if err := durable.WriteFile(vfs.Default, dir, checkpoint.VerifierFile, []byte(vkey+"\n"), false); err != nil {
		ps.Close()
		return nil, err
	}
	return trail.OpenStore(ps, cfg)
}

// flowKey is the console's key for OpenID Connect sign-ins in progress
// when several processes share a database: derived (HKDF-SHA256) from the
// signing key file they share, which never enters the database, so that a
// sign-in started at one process finishes at any.
func flowKey(keyFile string) ([]byte, error) {
	secret, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	return hkdf.Key(sha256.New, secret, nil, "trail console: OpenID Connect sign-ins in progress", 32)
}

// redactURL leaves a connection string's password out of logs, in either
// form PostgreSQL takes (a URL, or key=value pairs).
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme != "" {
		return u.Redacted()
	}
	return passwordRE.ReplaceAllString(s, "password=xxxxx")
}

var passwordRE = regexp.MustCompile(`password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// stop is the graceful stop: stop reading syslog and wait until what was
// read is stored, refuse new connections, let requests in progress finish (their events are acknowledged or refused), end live
// tails, then close the engine, which drains its queue, fsyncs and signs a
// final checkpoint.
func (d *daemon) stop(ctx context.Context) error {
	var serr error
	if d.syslog != nil {
		serr = d.syslog.Shutdown(ctx) // stop reading; every message read is stored or refused
	}
	d.srv.Shutdown()
	herr := d.http.Shutdown(ctx)
	if d.auth != nil {
		d.auth.Close()
	}
	if d.principals != nil {
		d.principals.Close()
	}
	return errors.Join(serr, herr, d.l.Close(ctx))
}

// checkServeDir refuses (exit 2) a data directory that the group or others
// may use, and an existing non-empty directory that is not a Trail data
// directory, so that trail serve never takes over another program's files.
// A missing one is made by trail.Open, mode 0700.
func checkServeDir(dir string) error {
	st, err := datadir.Inspect(dir)
	if err != nil {
		return &exitError{2, fmt.Errorf("--data %w; give a new or empty directory, or the one an earlier trail serve made", err)}
	}
	if st == datadir.Missing {
		return nil
	}
	if err := datadir.CheckPrivate(dir); err != nil {
		return &exitError{2, fmt.Errorf("--data %w", err)}
	}
	return nil
}

// warnPlainHTTP warns when the API is served without TLS on an address other
// hosts can reach: bearer tokens and patients' events would cross the
// network in the clear.
func warnPlainHTTP(logger *slog.Logger, addr net.Addr, overTLS bool) {
	if tcp, ok := addr.(*net.TCPAddr); overTLS || ok && tcp.IP.IsLoopback() {
		return
	}
	logger.Warn("serving plain HTTP on an address other hosts can reach: tokens and events cross the network unencrypted; "+
		"serve HTTPS with --tls-cert and --tls-key, or listen on loopback behind a TLS proxy", "listen", addr.String())
}
