package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/client"
	"github.com/trailhq/trail/internal/bench"
	"github.com/trailhq/trail/server"
)

// benchCmd is "trail bench": events/s and acknowledgement latency.
type benchCmd struct {
	stdout, stderr io.Writer
}

func (c *benchCmd) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	setUsage(fs, "bench [flags]", "Appends events as fast as the flags allow and prints events/s and acknowledgement latency, "+
		"and per run the heap allocations per event and the peak RSS (MB) of this whole process: the client, and the server and engine when they run in it. "+
		"With --server the peak RSS is n/a (the server is not the bench's); with --store it is that of the trail serve processes the bench starts.")
	var w bench.Workload
	fs.IntVar(&w.Events, "events", 200000, "events to append")
	fs.IntVar(&w.Size, "size", 300, "approximate size of an event as a client sends it (JSON) in bytes; stored events are about 190 bytes larger")
	fs.IntVar(&w.Producers, "producers", 64, "concurrent callers, each waiting for its receipt")
	fs.BoolVar(&w.Async, "async", false, "one caller logs all events without waiting, then waits for every receipt")
	fs.IntVar(&w.Streams, "streams", 1000, "distinct streams the events go to")
	embedded := fs.Bool("embedded", false, "drive the engine in-process (default: start a server on loopback and drive it through the Go client)")
	server := fs.String("server", "", "drive a running server at URL (token from --token or $TRAIL_TOKEN)")
	remote := remoteFlags{server: server, token: fs.String("token", "", "bearer token for --server (default $TRAIL_TOKEN)")}
	lanes := fs.Int("lanes", 1, "with a server: the client's lanes (batches in flight at once)")
	data := fs.String("data", "", "data directory to keep (default: a temporary directory, removed afterwards)")
	sync := fs.String("sync", "always", "always: fsync before each receipt; none: do not wait for the disk")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	baseline := fs.Bool("baseline", false, "also run, on the same disk, the bare group-commit writer and a naive writer (a mutex, encoding/json and a write per event, never fsynced) and print the ratios")
	reopen := fs.Bool("reopen", false, "after the run, close the engine, open it again and print how long opening took")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run to `file`")
	maxHeads := fs.Int("max-stream-heads", trail.DefaultConfig().MaxStreamHeads, "with --embedded or neither: streams whose last event the engine keeps in memory")
	store := fs.String("store", "", "start --processes \"trail serve --store URL\" processes on loopback over the PostgreSQL database at `URL` and drive them through the Go client, "+
		"the producers split evenly over them; the database must hold no Trail log yet (the log the bench makes stays there); "+
		"with --baseline, also PostgreSQL's own INSERT of each event (COPY with --async) into a table made for the run and dropped after it")
	processes := fs.Int("processes", 2, "with --store: trail serve processes sharing the database")
	signingKey := fs.String("signing-key", "", "with --store: the checkpoint signing key `file` the processes share (created when missing; default: a key of the run's own, removed afterwards)")
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	if fs.NArg() > 0 {
		return &exitError{2, fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if w.Events <= 0 || w.Size <= 0 {
		return &exitError{2, errors.New("--events and --size must be positive")}
	}
	if err := checkSync(*sync); err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *server != "" && *embedded {
		return &exitError{code: 2, err: errors.New("--embedded and --server exclude each other")}
	}
	if *store == "" && (isSet(fs, "processes") || *signingKey != "") {
		return &exitError{code: 2, err: errors.New("--processes and --signing-key go with --store")}
	}
	if *store != "" {
		if *server != "" || *embedded || *data != "" || *reopen || *sync != "always" {
			return &exitError{code: 2, err: errors.New("--store excludes --server, --embedded, --data, --reopen and --sync")}
		}
		sb := &storeBench{url: *store, processes: *processes, keyFile: *signingKey, lanes: *lanes, stderr: c.stderr}
		res, err := sb.run(ctx, w)
		if err != nil {
			return err
		}
		results := []bench.Result{res}
		if *baseline {
			peer, err := runStorePeer(ctx, *store, w)
			if err != nil {
				return fmt.Errorf("PostgreSQL peer: %w", err)
			}
			results = append(results, peer)
		}
		return c.print(results, *asJSON)
	}
	cfg := trail.DefaultConfig()
	cfg.Sync = trail.SyncMode(*sync)
	cfg.MaxStreamHeads = *maxHeads
	if *maxHeads < 1 {
		return &exitError{2, fmt.Errorf("--max-stream-heads %d: want at least 1", *maxHeads)}
	}
	if *server != "" {
		res, err := runRemote(ctx, remote, *lanes, w)
		if err != nil {
			return err
		}
		// The work is in a server the bench did not start: its resident set
		// is not this process's, which is only the client.
		res.PeakRSSMB, res.PeakRSSOf = nil, ""
		return c.print([]bench.Result{res}, *asJSON)
	}
	dir := *data
	if dir == "" {
		tmp, err := os.MkdirTemp("", "trail-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	var res bench.Result
	var err error
	if *embedded {
		res, err = runEmbedded(ctx, dir, cfg, w)
	} else {
		res, err = runSelfHosted(ctx, dir, cfg, *lanes, w)
	}
	if err != nil {
		return err
	}
	if *reopen {
		start := time.Now()
		l, err := trail.Open(dir, cfg)
		if err != nil {
			return err
		}
		took := time.Since(start)
		size := l.Size()
		if err := l.Close(ctx); err != nil {
			return err
		}
		fmt.Fprintf(c.stderr, "reopen: %d events, open took %v\n", size, took.Round(time.Microsecond))
	}
	results := []bench.Result{res}
	if *baseline {
		base, err := runBare(ctx, w, cfg.Sync == trail.SyncAlways)
		if err != nil {
			return err
		}
		results = append(results, base)
		naive, err := runNaive(ctx, w)
		if err != nil {
			return err
		}
		results = append(results, naive)
	}
	return c.print(results, *asJSON)
}

func runEmbedded(ctx context.Context, dir string, cfg trail.Config, w bench.Workload) (bench.Result, error) {
	l, err := trail.Open(dir, cfg)
	if err != nil {
		return bench.Result{}, err
	}
	res, err := bench.Run(ctx, bench.Engine{L: l}, w)
	if cerr := l.Close(context.Background()); err == nil {
		err = cerr
	}
	res.Mode = modeName("embedded", w)
	res.Durable = cfg.Sync == trail.SyncAlways
	return res, err
}

// runSelfHosted starts a server on loopback over dir and drives it through
// the Go client, as an application would.
func runSelfHosted(ctx context.Context, dir string, cfg trail.Config, lanes int, w bench.Workload) (bench.Result, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return bench.Result{}, err
	}
	d, err := startDaemon(dir, nil, cfg, server.Config{}, ln, nil)
	if err != nil {
		return bench.Result{}, err
	}
	tok := string(d.token)
	res, err := runRemote(ctx, remoteFlags{server: ptr("http://" + ln.Addr().String()), token: &tok}, lanes, w)
	if serr := d.stop(context.Background()); err == nil {
		err = serr
	}
	res.Mode = modeName("self-hosted", w)
	res.Durable = cfg.Sync == trail.SyncAlways
	return res, err
}

func ptr[T any](v T) *T { return &v }

// runRemote drives a server through the Go client.
func runRemote(ctx context.Context, remote remoteFlags, lanes int, w bench.Workload) (bench.Result, error) {
	cl, err := remote.client(client.WithLanes(lanes))
	if err != nil {
		return bench.Result{}, err
	}
	res, err := bench.Run(ctx, bench.Engine{L: cl}, w)
	if cerr := cl.Close(context.Background()); err == nil {
		err = cerr
	}
	res.Mode = modeName("server", w)
	res.Durable = true // as the server is configured; a server with --sync none is not
	return res, err
}

// peer is a reference writer the engine is compared with.
type peer interface {
	bench.Appender
	Close() error
}

// runPeer runs w against the peer open starts on a temporary directory,
// removed afterwards (the system's temporary directory, as the engine's
// default).
func runPeer(ctx context.Context, w bench.Workload, kind string, durable bool, open func(dir string) (peer, error)) (bench.Result, error) {
	tmp, err := os.MkdirTemp("", "trail-"+kind+"-")
	if err != nil {
		return bench.Result{}, err
	}
	defer os.RemoveAll(tmp)
	p, err := open(tmp)
	if err != nil {
		return bench.Result{}, err
	}
	res, err := bench.Run(ctx, p, w)
	if cerr := p.Close(); err == nil {
		err = cerr
	}
	res.Mode = modeName(kind, w)
	res.Durable = durable
	return res, err
}

// runBare runs the bare group-commit writer.
func runBare(ctx context.Context, w bench.Workload, durable bool) (bench.Result, error) {
	return runPeer(ctx, w, "bare-writer", durable, func(dir string) (peer, error) { return bench.OpenBare(dir, durable) })
}

// runNaive runs the naive writer: a mutex, encoding/json and a write per
// event, never fsynced.
func runNaive(ctx context.Context, w bench.Workload) (bench.Result, error) {
	return runPeer(ctx, w, "naive-writer", false, func(dir string) (peer, error) { return bench.OpenNaive(dir) })
}

func modeName(kind string, w bench.Workload) string {
	if w.Async {
		return kind + " async"
	}
	return fmt.Sprintf("%s p=%d", kind, w.Producers)
}

func (c *benchCmd) print(rs []bench.Result, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(c.stdout)
		if len(rs) == 1 {
			return enc.Encode(rs[0])
		}
		return enc.Encode(rs)
	}
	width := 0
	for _, r := range rs {
		width = max(width, len(r.Mode))
	}
	fmt.Fprintln(c.stdout, bench.HeaderWidth(width))
	for _, r := range rs {
		fmt.Fprintln(c.stdout, bench.FormatWidth(r, width))
	}
	for _, r := range rs[min(len(rs), 1):] {
		peer := strings.ReplaceAll(strings.Fields(r.Mode)[0], "-", " ")
		if strings.HasPrefix(r.Mode, "postgres ") {
			peer = strings.SplitN(r.Mode, ",", 2)[0]
		}
		fmt.Fprintf(c.stdout, "trail / %s: %.2f×\n", peer, rs[0].EventsPerSec/r.EventsPerSec)
	}
	for _, r := range rs {
		if r.PeakRSSMB != nil && r.PeakRSSOf != bench.RSSOfBench {
			fmt.Fprintf(c.stdout, "%s: peak RSS of %s\n", r.Mode, r.PeakRSSOf)
		}
	}
	for i, n := range rs[0].ProcessEvents {
		fmt.Fprintf(c.stdout, "trail serve #%d acknowledged %d events\n", i+1, n)
	}
	for i, r := range rs {
		if r.Storage != nil {
			who := "trail"
			if i > 0 {
				who = strings.SplitN(r.Mode, ",", 2)[0]
			}
			fmt.Fprintf(c.stdout, "%s: %s\n", who, r.Storage)
		}
	}
	return nil
}
