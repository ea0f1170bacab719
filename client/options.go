package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
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
}

func defaultConfig() config {
	return config{
		batchSize:    1000,
		linger:       2 * time.Millisecond,
		lanes:        1,
		maxBuffered:  100000,
		retryTimeout: 30 * time.Second,
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
