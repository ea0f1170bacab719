package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trailhq/trail/auth"
	"github.com/trailhq/trail/client"
	"github.com/trailhq/trail/internal/bench"
	"github.com/trailhq/trail/internal/checkpoint"
)

// storeBench is "trail bench --store URL": processes "trail serve --store
// URL" child processes on loopback, sharing the database and a signing key,
// driven through the Go client with the producers split evenly over them.
type storeBench struct {
	url       string
	processes int
	keyFile   string // "" for a key of the run's own
	lanes     int
	stderr    io.Writer
}

// storeChild is one "trail serve" child process.
type storeChild struct {
	cmd     *exec.Cmd
	dir     string // its --data
	logPath string // its stderr and stdout
	url     string // http://127.0.0.1:port
	exited  chan struct{}
	waitErr error // set before exited closes
	stopped bool
}

// run runs w through the children and returns the result with the events
// each process acknowledged. Whatever happens, the children are stopped
// (SIGTERM, then SIGKILL after 30s) before it returns; on failure their
// logs are printed to stderr.
func (b *storeBench) run(ctx context.Context, w bench.Workload) (res bench.Result, err error) {
	if b.processes < 1 {
		return res, &exitError{2, errors.New("--processes must be at least 1")}
	}
	if err := checkNoTrailLog(ctx, b.url); err != nil {
		return res, err
	}
	tmp, err := os.MkdirTemp("", "trail-bench-store-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	keyFile := b.keyFile
	if keyFile == "" {
		keyFile = filepath.Join(tmp, "signing.key")
		var r [6]byte
		rand.Read(r[:])
		if err := checkpoint.CreateKeyFile(keyFile, "trail/bench-"+hex.EncodeToString(r[:])); err != nil {
			return res, err
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return res, err
	}
	var children []*storeChild
	defer func() {
		serr := stopChildren(children)
		if err == nil && serr != nil {
			err = serr
		}
		if err != nil && ctx.Err() == nil { // not when interrupted
			for i, c := range children {
				fmt.Fprintf(b.stderr, "--- trail serve #%d (%s):\n%s", i+1, c.logPath, logTail(c.logPath, 8000))
			}
		}
	}()
	// The first process makes the log and the admin token; the others start
	// once it serves, on the same database.
	var token string
	for i := range b.processes {
		c, err := startChild(ctx, exe, tmp, i, b.url, keyFile)
		if c != nil {
			children = append(children, c)
		}
		if err != nil {
			return res, fmt.Errorf("trail serve #%d: %w", i+1, err)
		}
		if i == 0 {
			tok, err := os.ReadFile(filepath.Join(c.dir, auth.AdminTokenFile))
			if err != nil {
				return res, fmt.Errorf("trail serve #1 wrote no admin token: %w", err)
			}
			token = strings.TrimSpace(string(tok))
		}
	}
	var clients []*client.Client
	closeClients := func() error {
		var errs []error
		for _, cl := range clients {
			errs = append(errs, cl.Close(context.Background()))
		}
		clients = nil
		return errors.Join(errs...)
	}
	defer closeClients()
	as := make([]bench.Appender, 0, len(children))
	for _, c := range children {
		cl, err := client.New(c.url, client.WithToken(token), client.WithLanes(b.lanes))
		if err != nil {
			return res, err
		}
		clients = append(clients, cl)
		as = append(as, bench.Engine{L: cl})
	}
	// The work is in the children: theirs is the resident set to report;
	// this process is only the clients.
	pids := make([]int, len(children))
	for i, c := range children {
		pids[i] = c.cmd.Process.Pid
	}
	rss := bench.WatchRSS(pids...)
	res, err = bench.RunSplit(ctx, as, w)
	res.PeakRSSMB, res.PeakRSSOf = nil, ""
	if mb, ok := rss.Stop(); ok {
		res.PeakRSSMB, res.PeakRSSOf = &mb, childrenRSSOf(len(children))
	}
	if cerr := closeClients(); err == nil {
		err = cerr
	}
	if err != nil {
		return res, err
	}
	for i, c := range children {
		n, err := appendedEvents(ctx, c.url)
		if err != nil {
			return res, fmt.Errorf("trail serve #%d: %w", i+1, err)
		}
		res.ProcessEvents = append(res.ProcessEvents, n)
	}
	res.Mode = storeModeName(b.processes, w)
	res.Durable = true // every receipt follows a COMMIT with synchronous_commit on
	rows, idx, err := bench.RelationBytes(ctx, b.url, "trail_events")
	if err != nil {
		return res, err
	}
	tr, tri, err := bench.RelationBytes(ctx, b.url, "trail_tree")
	if err != nil {
		return res, err
	}
	n := float64(w.Events)
	res.Storage = &bench.Storage{Rows: float64(rows) / n, Indexes: float64(idx) / n, Tree: float64(tr+tri) / n}
	return res, nil
}

// childrenRSSOf is Result.PeakRSSOf of n trail serve children: the sum of
// each one's own peak, which may be more than their peak together.
func childrenRSSOf(n int) string {
	if n == 1 {
		return "the trail serve process"
	}
	return fmt.Sprintf("the %d trail serve processes, the sum of each one's peak", n)
}

func storeModeName(processes int, w bench.Workload) string {
	procs := fmt.Sprintf("%d processes", processes)
	if processes == 1 {
		procs = "1 process"
	}
	if w.Async {
		return "postgres, " + procs + ", async"
	}
	return fmt.Sprintf("postgres, %s, %d producers", procs, max(w.Producers, 1))
}

// checkNoTrailLog refuses a database that already holds a Trail log: the
// bench would append its events to that log, which can never be taken out
// again.
func checkNoTrailLog(ctx context.Context, url string) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, url)
	if err != nil {
		return fmt.Errorf("--store: %w", err)
	}
	defer conn.Close(context.Background())
	var exists bool
	err = conn.QueryRow(cctx, `SELECT to_regclass('trail_log') IS NOT NULL`).Scan(&exists)
	if err == nil && exists {
		err = conn.QueryRow(cctx, `SELECT EXISTS (SELECT 1 FROM trail_log)`).Scan(&exists)
	}
	if err != nil {
		return fmt.Errorf("--store: %w", err)
	}
	if exists {
		return &exitError{2, fmt.Errorf("--store %s already holds a Trail log: the bench would add its events to it for good; "+
			"give it a database of its own (CREATE DATABASE trail_bench)", redactURL(url))}
	}
	return nil
}

// startChild starts "trail serve" #i+1 on the database and waits until it
// says where it listens and its /readyz answers 200. The returned child,
// when not nil, is running or has exited, and must be stopped.
func startChild(ctx context.Context, exe, tmp string, i int, url, keyFile string) (*storeChild, error) {
	c := &storeChild{
		dir:     filepath.Join(tmp, fmt.Sprintf("serve-%d", i+1)),
		logPath: filepath.Join(tmp, fmt.Sprintf("serve-%d.log", i+1)),
		exited:  make(chan struct{}),
	}
	logf, err := os.Create(c.logPath)
	if err != nil {
		return nil, err
	}
	c.cmd = exec.Command(exe, "serve", "--store", url, "--signing-key", keyFile,
		"--listen", "127.0.0.1:0", "--data", c.dir)
	c.cmd.SysProcAttr = childProcAttr()
	lw := &listenWatcher{w: logf, found: make(chan string, 1)}
	c.cmd.Stdout, c.cmd.Stderr = lw, lw
	if err := c.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() {
		c.waitErr = c.cmd.Wait() // returns once the child's output is copied
		logf.Close()
		close(c.exited)
	}()
	timeout := time.NewTimer(60 * time.Second)
	defer timeout.Stop()
	select {
	case c.url = <-lw.found:
	case <-c.exited:
		return c, fmt.Errorf("exited at start: %v", c.waitErr)
	case <-ctx.Done():
		return c, ctx.Err()
	case <-timeout.C:
		return c, errors.New("did not start listening within 60s")
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	for {
		resp, err := hc.Get(c.url + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c, nil
			}
		}
		select {
		case <-c.exited:
			return c, fmt.Errorf("exited at start: %v", c.waitErr)
		case <-ctx.Done():
			return c, ctx.Err()
		case <-timeout.C:
			return c, errors.New("/readyz did not answer 200 within 60s")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// listenWatcher writes a child's output to its log file and reports the
// address of the line saying where it serves.
type listenWatcher struct {
	w     io.Writer
	mu    sync.Mutex
	line  []byte
	found chan string
	done  bool
}

func (l *listenWatcher) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.line = append(l.line, p...)
		for {
			i := bytes.IndexByte(l.line, '\n')
			if i < 0 {
				break
			}
			line := string(l.line[:i])
			l.line = l.line[i+1:]
			if m := childListenRE.FindStringSubmatch(line); m != nil {
				l.found <- m[1]
				l.done, l.line = true, nil
				break
			}
		}
	}
	return l.w.Write(p)
}

var childListenRE = regexp.MustCompile(`listen=(http://\S+)`)

// appendedEvents reads trail_http_appended_events_total from a server's
// /metrics.
func appendedEvents(ctx context.Context, url string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "trail_http_appended_events_total "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f), err
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("/metrics has no trail_http_appended_events_total")
}

// stopChildren stops every child still running: SIGTERM (a graceful stop:
// requests finish, a final checkpoint is signed), and SIGKILL to one that
// has not exited 30s later. It reports a child that did not exit cleanly.
func stopChildren(children []*storeChild) error {
	for _, c := range children {
		if !c.stopped {
			c.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.After(30 * time.Second)
	var errs []error
	for i, c := range children {
		if c.stopped {
			continue
		}
		c.stopped = true
		select {
		case <-c.exited:
		case <-deadline:
			c.cmd.Process.Kill()
			<-c.exited
			errs = append(errs, fmt.Errorf("trail serve #%d did not stop within 30s of SIGTERM: killed", i+1))
			continue
		}
		if c.waitErr != nil {
			errs = append(errs, fmt.Errorf("trail serve #%d: %v", i+1, c.waitErr))
		}
	}
	return errors.Join(errs...)
}

// logTail is the end of a child's log.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error() + "\n"
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// runStorePeer runs w as PostgreSQL's own writes into a table it creates in
// the database (trail_bench_insert_<random>) and drops afterwards: one
// autocommit INSERT per event over as many connections as producers, or with
// w.Async, COPY in batches of 1000 over 4 connections.
func runStorePeer(ctx context.Context, url string, w bench.Workload) (res bench.Result, err error) {
	t, err := bench.CreatePGTable(ctx, url)
	if err != nil {
		return res, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if derr := t.Drop(dctx); err == nil {
			err = derr
		}
	}()
	var a interface {
		bench.Appender
		Close()
	}
	if w.Async {
		const conns = 4
		a, err = bench.OpenPGCopy(ctx, t, conns, 1000, 5*time.Millisecond)
		res.Mode = fmt.Sprintf("postgres COPY, %d conns", conns)
	} else {
		conns := max(w.Producers, 1)
		a, err = bench.OpenPGInsert(ctx, t, conns)
		res.Mode = fmt.Sprintf("postgres INSERT, %d conns", conns)
	}
	if err != nil {
		return res, err
	}
	mode := res.Mode
	res, err = bench.Run(ctx, a, w)
	a.Close()
	res.Mode = mode
	// The writes are PostgreSQL's, in a server the bench did not start.
	res.PeakRSSMB, res.PeakRSSOf = nil, ""
	if err != nil {
		return res, err
	}
	res.Durable = true
	n, err := t.Count(ctx)
	if err == nil && n != int64(w.Events) {
		err = fmt.Errorf("table %s holds %d rows after %d events", t.Name, n, w.Events)
	}
	if err != nil {
		return res, err
	}
	rows, idx, err := bench.RelationBytes(ctx, url, t.Name)
	res.Storage = &bench.Storage{Rows: float64(rows) / float64(n), Indexes: float64(idx) / float64(n)}
	return res, err
}
