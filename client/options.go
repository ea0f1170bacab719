package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Limits of the batch endpoint (POST /v1/batch).
const (
	// MaxBatchSize is the most events the server takes in one batch.
	MaxBatchSize = 10000
	// maxBody bounds a batch request body: the server refuses 16 MiB and more.
	maxBody = 16<<20 - 1
)

// Option configures a Client; pass options to New.
type Option func(*config)

// config is what the options set; New fills defaults and checks it.
type config struct {
	token        string
	hc           *http.Client
	tls          *tls.Config
	batchSize    int
	linger       time.Duration
	lanes        int
	maxBuffered  int
	retryTimeout time.Duration
	logger       *slog.Logger

	spoolDir     string
	spoolMax     int64
	spoolAck     bool
	spoolFS      vfs.FS // tests: a crashable file system; nil is the OS's
	spoolSegment int64  // bytes after which a new spool file is started
}

func defaultConfig() config {
	return config{
		batchSize:    1000,
		linger:       2 * time.Millisecond,
		lanes:        1,
		maxBuffered:  100000,
		retryTimeout: 30 * time.Second,
		spoolSegment: 16 << 20,
	}
}

func (c *config) validate() error {
	var errs []error
	if c.batchSize < 1 || c.batchSize > MaxBatchSize {
		errs = append(errs, fmt.Errorf("batch size %d: must be 1-%d", c.batchSize, MaxBatchSize))
	}
	if c.linger < 0 {
		errs = append(errs, fmt.Errorf("linger %v: must not be negative", c.linger))
	}
	if c.lanes < 1 || c.lanes > 1024 {
		errs = append(errs, fmt.Errorf("lanes %d: must be 1-1024", c.lanes))
	}
	if c.maxBuffered < 1 {
		errs = append(errs, fmt.Errorf("max buffered %d: must be at least 1", c.maxBuffered))
	}
	if c.retryTimeout <= 0 {
		errs = append(errs, fmt.Errorf("retry timeout %v: must be positive", c.retryTimeout))
	}
	if c.spoolDir != "" && c.spoolMax < minSpool {
		errs = append(errs, fmt.Errorf("spool of %d bytes: must hold at least %d (one largest event)", c.spoolMax, minSpool))
	}
	if c.spoolAck && c.spoolDir == "" {
		errs = append(errs, errors.New("WithSpoolAck needs WithSpool"))
	}
	return errors.Join(errs...)
}

// WithToken authenticates every request with "Authorization: Bearer tok".
func WithToken(tok string) Option { return func(c *config) { c.token = tok } }

// WithHTTPClient sends requests through hc, for example one with a custom
// TLS configuration or client certificate. Its Transport should keep at least
// as many idle connections per host as there are lanes
// (http.Transport.MaxIdleConnsPerHost, 2 by default), or batches will open
// new connections. hc.Timeout must be zero if Tail is used: a tail is a
// long-lived request.
func WithHTTPClient(hc *http.Client) Option { return func(c *config) { c.hc = hc } }

// WithTLS uses conf for https URLs: a CA to trust (RootCAs) and a client
// certificate to authenticate with (Certificates), for a server started
// with --tls-cert and --client-ca. Ignored with WithHTTPClient.
func WithTLS(conf *tls.Config) Option { return func(c *config) { c.tls = conf } }

// WithBatchSize sets the most events sent in one request (default 1000, at
// most MaxBatchSize). A batch is also cut before its body reaches 16 MiB.
func WithBatchSize(n int) Option { return func(c *config) { c.batchSize = n } }

// WithLinger sets the longest a lane waits, after a request returns, for
// events to fill the next batch (default 2ms; 0 never waits). See the package
// documentation for when it applies.
func WithLinger(d time.Duration) Option { return func(c *config) { c.linger = d } }

// WithLanes sets how many batches may be in flight at once (default 1). The
// events of one stream always go through the same lane. More lanes raise the
// throughput of a backlog (one caller logging without waiting: about 1.5x
// with 4 lanes) but split closed-loop producers' events over more, smaller
// requests (64 producers each waiting: about half as many events/s with 4
// lanes); see the package documentation.
func WithLanes(n int) Option { return func(c *config) { c.lanes = n } }

// WithMaxBuffered bounds the events held by the client, queued or in flight
// and not yet resolved (default 100000).
func WithMaxBuffered(n int) Option { return func(c *config) { c.maxBuffered = n } }

// WithRetryTimeout sets how long a batch is retried after transient failures
// (network errors, 502, 503, 504) before its events fail (default 30s).
func WithRetryTimeout(d time.Duration) Option { return func(c *config) { c.retryTimeout = d } }

// WithLogger sets where retries are logged (default: nowhere).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// minSpool is the smallest spool: one frame of the largest event.
const minSpool = frameHead + frameFixed + 255 + 64<<10

// WithSpool keeps every event logged in the directory dir until the server
// has acknowledged it, so that neither an outage of the server nor a
// restart of the application loses one. Log appends the event to the spool
// (written and fsynced in batches by a goroutine: Log never waits for the
// disk's fsync nor for the network); a sender posts the spooled events in
// the order they were logged, one batch at a time, and retries without end
// while the server is unreachable, answers 5xx or 429, or refuses the whole
// batch (a revoked token): events stay in the spool until it takes them.
//
// maxBytes bounds the spool's events not yet acknowledged, as stored (a
// frame of 17 bytes plus the id, plus the event's JSON); on disk the spool
// takes at most that plus one file (16 MiB) of events already sent. When it is full,
// Log fails the event at once with an error matching ErrSpoolFull (and
// trail.ErrBufferFull); Enqueue and Append wait for room under their
// context. An event is never dropped to make room.
//
// An application started again on the same directory sends what its
// previous run left, exactly once: each event is spooled with its id (one
// is assigned when empty), resent byte for byte, and the server answers an
// id it has with the first receipt. Event.Time is set at Log when zero, so
// a spooled event keeps the time it happened, not the time the server got
// it. The Pendings of the previous run are gone; Stats counts its events.
//
// An event the server refuses alone (a 400, 403, 409 or 413 naming its
// line) can never be stored: its Pending fails with the *Error, and it is
// appended, with the server's answer, to rejected.ndjson in the directory.
//
// The directory is created with mode 0700, its files 0600, and it is
// locked: a second client, in this process or another, gets an error from
// New. Without WithSpoolAck, Pending.Wait returns the server's receipt, and
// each event logged and not yet acknowledged holds its Pending in memory. With a spool, WithLanes, WithMaxBuffered and
// WithRetryTimeout do not apply: one batch is in flight at a time.
func WithSpool(dir string, maxBytes int64) Option {
	return func(c *config) { c.spoolDir, c.spoolMax = dir, maxBytes }
}

// WithSpoolAck resolves each Pending as soon as its event is fsynced in the
// spool, instead of when the server has stored it: Wait then returns a
// Receipt with only ID and Stream set (no index or leaf hash: the server
// has not seen the event yet), and an error only if the spool could not
// take it. The spool still sends every event to the server; Flush and
// Close still wait for the server. Use it when the application must not
// wait on the server at all, or when a large spool would otherwise hold
// many Pendings in memory.
func WithSpoolAck() Option { return func(c *config) { c.spoolAck = true } }
