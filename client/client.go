package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailhq/trail"
)

// Client is a remote Trail log: it batches events to POST /v1/batch and
// serves the read endpoints. It is safe for concurrent use.
type Client struct {
	cfg   config
	base  string // server URL without a trailing slash
	batch string // base + "/v1/batch"
	auth  string // "Bearer <token>", or empty
	hc    *http.Client
	ownHC bool // hc was made by New: Close closes its idle connections
	log   *slog.Logger

	lanes []*lane
	spool *spool // WithSpool; then there are no lanes
	sent  atomic.Uint64

	// The bound on events held: queued or in flight, not yet resolved.
	used    atomic.Int64
	waiters atomic.Int32 // callers of Enqueue waiting for room
	roomMu  sync.Mutex
	room    chan struct{} // closed when room is freed and someone waits
	errFull error

	isClosed  atomic.Bool
	closed    chan struct{} // closed when Close begins
	runCtx    context.Context
	abort     context.CancelCauseFunc // cancels requests and retries when Close gives up
	lanesDone sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

var _ trail.Appender = (*Client)(nil)

// New returns a client of the Trail server at rawURL (such as
// "http://127.0.0.1:7070"). It starts one goroutine per lane; Close stops
// them.
func New(rawURL string, opts ...Option) (*Client, error) {
	base, err := parseBase(rawURL)
	if err != nil {
		return nil, err
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c := &Client{
		cfg: cfg, base: base, batch: base + "/v1/batch", hc: cfg.hc, log: cfg.logger,
		room:   make(chan struct{}),
		closed: make(chan struct{}),
		errFull: fmt.Errorf("client: %w: %d events are waiting for the server (WithMaxBuffered); use Enqueue or Append to wait for room",
			trail.ErrBufferFull, cfg.maxBuffered),
	}
	if cfg.token != "" {
		c.auth = "Bearer " + cfg.token
	}
	if c.hc == nil {
		c.hc, c.ownHC = newHTTPClient(cfg.lanes, cfg.tls), true
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.runCtx, c.abort = context.WithCancelCause(context.Background())
	if cfg.spoolDir != "" {
		fs := cfg.spoolFS
		if fs == nil {
			fs = vfs.Default
		}
		s, err := openSpool(fs, cfg.spoolDir, cfg.spoolMax, cfg.spoolSegment, cfg.spoolAck, c.log)
		if err != nil {
			c.abort(err)
			return nil, err
		}
		c.spool = s
		go s.syncLoop()
		go s.sendLoop(c)
		return c, nil
	}
	c.lanes = make([]*lane, cfg.lanes)
	for i := range c.lanes {
		c.lanes[i] = newLane(c, i)
	}
	c.lanesDone.Add(len(c.lanes))
	for _, l := range c.lanes {
		go l.run()
	}
	return c, nil
}

func parseBase(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("client: server URL %q: %w", rawURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("client: server URL %q: want http://host:port or https://host:port", rawURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("client: server URL %q: must not have a query or fragment", rawURL)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// newHTTPClient keeps an idle connection per lane, and a few more for reads,
// where http.DefaultTransport keeps two per host.
func newHTTPClient(lanes int, tlsConf *tls.Config) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if tlsConf != nil {
		t.TLSClientConfig = tlsConf
	}
	t.MaxIdleConnsPerHost = lanes + 4
	t.MaxIdleConns = max(t.MaxIdleConns, lanes+4)
	return &http.Client{Transport: t}
}

// Log hands ev over and returns at once: it never waits for the network.
// The Pending fails at once with a *trail.ValidationError when ev is
// invalid (it is never sent), with an error matching trail.ErrBufferFull
// when WithMaxBuffered events are already held, and with trail.ErrClosed
// once Close has begun.
func (c *Client) Log(ev trail.Event) *trail.Pending {
	p, settle := trail.NewPending()
	if err := ev.Validate(); err != nil {
		settle(trail.Receipt{}, false, err)
		return p
	}
	if c.isClosed.Load() {
		settle(trail.Receipt{}, false, trail.ErrClosed)
		return p
	}
	if c.spool != nil {
		if err := c.logSpooled(ev, settle); err != nil {
			settle(trail.Receipt{}, false, err)
		}
		return p
	}
	if !c.reserve() {
		settle(trail.Receipt{}, false, c.errFull)
		return p
	}
	c.push(ev, settle)
	return p
}

// Enqueue is Log, but waits under ctx for room when WithMaxBuffered events
// are held. It returns an error only when ctx ends or the client is closed;
// an invalid event gives a Pending already failed, as Log does.
func (c *Client) Enqueue(ctx context.Context, ev trail.Event) (*trail.Pending, error) {
	p, settle := trail.NewPending()
	if err := ev.Validate(); err != nil {
		settle(trail.Receipt{}, false, err)
		return p, nil
	}
	if c.spool != nil {
		return p, c.enqueueSpooled(ctx, ev, settle)
	}
	if err := c.waitRoom(ctx); err != nil {
		return nil, err
	}
	c.push(ev, settle)
	return p, nil
}

// Append logs ev, waiting for room if needed, and waits for its receipt.
func (c *Client) Append(ctx context.Context, ev trail.Event) (trail.Receipt, error) {
	p, err := c.Enqueue(ctx, ev)
	if err != nil {
		return trail.Receipt{}, err
	}
	return p.Wait(ctx)
}

// push routes an event, whose room is reserved, to its stream's lane.
func (c *Client) push(ev trail.Event, settle settleFunc) {
	l := c.lanes[laneOf(ev.Stream, len(c.lanes))]
	if !l.push(ev, settle) {
		c.release(1)
		settle(trail.Receipt{}, false, trail.ErrClosed)
	}
}

// laneOf hashes a stream (FNV-1a) to a lane, so that one lane carries all
// of a stream's events and keeps their order.
func laneOf(stream string, lanes int) int {
	h := uint32(2166136261)
	for i := 0; i < len(stream); i++ {
		h ^= uint32(stream[i])
		h *= 16777619
	}
	return int(h % uint32(lanes))
}

// reserve takes room for one event, or reports that there is none.
func (c *Client) reserve() bool {
	limit := int64(c.cfg.maxBuffered)
	for {
		u := c.used.Load()
		if u >= limit {
			return false
		}
		if c.used.CompareAndSwap(u, u+1) {
			return true
		}
	}
}

// waitRoom reserves room for one event, waiting under ctx.
func (c *Client) waitRoom(ctx context.Context) error {
	for {
		if c.isClosed.Load() {
			return trail.ErrClosed
		}
		if c.reserve() {
			return nil
		}
		// Register before the second look, so that a release between the
		// two sees a waiter and closes the channel taken here.
		c.waiters.Add(1)
		c.roomMu.Lock()
		room := c.room
		c.roomMu.Unlock()
		if c.reserve() {
			c.waiters.Add(-1)
			return nil
		}
		select {
		case <-room:
			c.waiters.Add(-1)
		case <-c.closed:
			c.waiters.Add(-1)
			return trail.ErrClosed
		case <-ctx.Done():
			c.waiters.Add(-1)
			return ctx.Err()
		}
	}
}

// release frees room for n events and wakes whoever waits for it.
func (c *Client) release(n int) {
	c.used.Add(-int64(n))
	if c.waiters.Load() > 0 {
		c.roomMu.Lock()
		close(c.room)
		c.room = make(chan struct{})
		c.roomMu.Unlock()
	}
}

// Flush waits until every event logged before the call is resolved: stored
// or failed. It returns ctx.Err() if ctx ends first.
func (c *Client) Flush(ctx context.Context) error {
	if c.spool != nil {
		return c.spool.flush(ctx)
	}
	marks := make([]uint64, len(c.lanes))
	for i, l := range c.lanes {
		marks[i] = l.loggedCount()
	}
	for i, l := range c.lanes {
		if err := l.waitResolved(ctx, marks[i]); err != nil {
			return err
		}
	}
	return nil
}

// Close drains the client: it stops taking events (Log then fails with
// trail.ErrClosed) and waits until every event handed over is stored or
// failed. If ctx ends first, Close stops retrying and sending, fails every
// event not yet acknowledged with an error matching trail.ErrClosed (one in
// a request cut short may have been stored), and returns an error wrapping
// ctx.Err(). Later calls return the first call's result.
//
// With WithSpool, Close writes out every event logged and sends until the
// spool is empty; if ctx ends first, what is left stays in the spool (the
// next client on the directory sends it), the Pendings still waiting fail
// with an error matching trail.ErrClosed that says so, and the spool is
// unlocked.
func (c *Client) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		c.isClosed.Store(true)
		close(c.closed)
		if c.spool != nil {
			c.closeErr = c.closeSpool(ctx)
			return
		}
		for _, l := range c.lanes {
			l.close()
		}
		done := make(chan struct{})
		go func() {
			c.lanesDone.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			c.abort(ctx.Err())
			<-done
			c.closeErr = fmt.Errorf("client: close: %w; events not yet acknowledged were failed", ctx.Err())
		}
		c.abort(trail.ErrClosed)
		if c.ownHC {
			c.hc.CloseIdleConnections()
		}
	})
	return c.closeErr
}

// abortError is what events still held get when Close gives up.
func abortError(cause error) error {
	return fmt.Errorf("client: %w before the event was acknowledged (%w); it may or may not be stored",
		trail.ErrClosed, cause)
}
