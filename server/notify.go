package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trailhq/trail"
)

// NotifyConfig configures the webhook told of each emergency access
// (trail serve --notify-url): every record appended to trail/break-glass is
// POSTed to URL as it happens, as the stored JSON.
//
// Delivery is in the background and never slows or fails the read: a read
// only puts the record's index in a bounded queue, without waiting; when the
// queue is full the notification is dropped, counted
// (trail_notify_total{result="dropped"}) and logged. One sender posts the
// records in order; an attempt that times out, cannot connect or gets a 5xx
// or 429 is retried with a doubling backoff until RetryFor has passed since
// the first attempt. A webhook that stays down thus holds the queue up and
// drops follow; trail/break-glass keeps every access whatever the webhook
// received. Notifications still queued when the server stops are dropped.
type NotifyConfig struct {
	// URL is the webhook, http or https; empty: no webhook.
	URL string
	// Queue is how many notifications may wait (default 1024).
	Queue int
	// Timeout bounds one attempt (default 10s).
	Timeout time.Duration
	// RetryFor is how long a notification is retried (default 10m).
	RetryFor time.Duration
	// Backoff is the wait before the first retry, doubled for each next one
	// up to a minute (default 1s).
	Backoff time.Duration
}

const (
	defaultNotifyQueue    = 1024
	defaultNotifyTimeout  = 10 * time.Second
	defaultNotifyRetryFor = 10 * time.Minute
	defaultNotifyBackoff  = time.Second
	maxNotifyBackoff      = time.Minute
)

// Validate checks the URL (absolute http or https with a host) and that no
// bound is negative.
func (c NotifyConfig) Validate() error {
	if c.URL == "" {
		return nil
	}
	if c.Queue < 0 || c.Timeout < 0 || c.RetryFor < 0 || c.Backoff < 0 {
		return errors.New("notify: queue, timeout, retry time and backoff must not be negative")
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("notify URL %q: want an absolute http:// or https:// URL such as https://alerts.example/trail", c.URL)
	}
	return nil
}

// Results of notifications, the label of trail_notify_total.
const (
	notifySent    = "sent"    // the webhook answered 2xx
	notifyRetry   = "retry"   // an attempt failed and is retried
	notifyRefused = "refused" // the webhook answered another status: not retried
	notifyFailed  = "failed"  // retried for RetryFor without success
	notifyDropped = "dropped" // the queue was full, or the server stopped
)

// notifier posts emergency accesses to the webhook.
type notifier struct {
	cfg    NotifyConfig
	url    string // redacted, for logs
	l      *trail.Log
	log    *slog.Logger
	client *http.Client
	queue  chan uint64 // indexes of trail/break-glass records
	total  *prometheus.CounterVec
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// newNotifier starts the sender for cfg, or returns nil when cfg has no URL.
func newNotifier(cfg NotifyConfig, l *trail.Log, logger *slog.Logger, reg *prometheus.Registry) (*notifier, error) {
	if cfg.URL == "" {
		return nil, nil
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Queue = cmpOr(cfg.Queue, defaultNotifyQueue)
	cfg.Timeout = cmpOr(cfg.Timeout, defaultNotifyTimeout)
	cfg.RetryFor = cmpOr(cfg.RetryFor, defaultNotifyRetryFor)
	cfg.Backoff = cmpOr(cfg.Backoff, defaultNotifyBackoff)
	u, _ := url.Parse(cfg.URL)
	n := &notifier{cfg: cfg, url: u.Redacted(), l: l, log: logger,
		// A redirect is an answer (refused), never followed elsewhere.
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		queue:  make(chan uint64, cfg.Queue),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trail_notify_total",
			Help: "Emergency accesses posted to --notify-url, by result: sent, retry (an attempt failed), refused (non-retryable status), failed (gave up), dropped (queue full or stopping).",
		}, []string{"result"}),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	for _, r := range []string{notifySent, notifyRetry, notifyRefused, notifyFailed, notifyDropped} {
		n.total.WithLabelValues(r)
	}
	if err := reg.Register(n.total); err != nil {
		return nil, err
	}
	go n.run()
	return n, nil
}

// enqueue queues the record at index without waiting; a nil notifier does
// nothing.
func (n *notifier) enqueue(index uint64) {
	if n == nil {
		return
	}
	select {
	case n.queue <- index:
	default:
		n.total.WithLabelValues(notifyDropped).Inc()
		n.log.Warn("notify queue full: emergency access not posted to the webhook (it stays in "+BreakGlassStream+")",
			"index", index, "queue", n.cfg.Queue, "url", n.url)
	}
}

// close stops the sender, ending an attempt under way; what is queued is
// dropped.
func (n *notifier) close() {
	if n == nil {
		return
	}
	n.once.Do(func() { close(n.stop) })
	<-n.done
}

func (n *notifier) run() {
	defer close(n.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-n.stop; cancel() }()
	for {
		select {
		case i := <-n.queue:
			n.deliver(ctx, i)
		case <-n.stop:
			if left := len(n.queue); left > 0 {
				n.total.WithLabelValues(notifyDropped).Add(float64(left))
				n.log.Warn("stopping: emergency accesses not posted to the webhook", "count", left, "url", n.url)
			}
			return
		}
	}
}

// deliver posts the record at index, retrying with backoff for RetryFor.
func (n *notifier) deliver(ctx context.Context, index uint64) {
	rec, err := n.l.Read(index)
	if err != nil {
		n.total.WithLabelValues(notifyFailed).Inc()
		n.log.Error("notify: emergency access not read", "index", index, "err", err)
		return
	}
	first, wait := time.Now(), n.cfg.Backoff
	for {
		retry, err := n.post(ctx, rec)
		switch {
		case err == nil:
			n.total.WithLabelValues(notifySent).Inc()
			return
		case !retry:
			n.total.WithLabelValues(notifyRefused).Inc()
			n.log.Error("notify: webhook refused an emergency access; not retried", "index", index, "url", n.url, "err", err)
			return
		case ctx.Err() != nil:
			n.total.WithLabelValues(notifyDropped).Inc()
			return
		case time.Since(first)+wait > n.cfg.RetryFor:
			n.total.WithLabelValues(notifyFailed).Inc()
			n.log.Error("notify: webhook unreachable; emergency access not posted", "index", index, "url", n.url,
				"tried_for", time.Since(first).Round(time.Millisecond), "err", err)
			return
		}
		n.total.WithLabelValues(notifyRetry).Inc()
		n.log.Warn("notify: attempt failed; retrying", "index", index, "url", n.url, "in", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			n.total.WithLabelValues(notifyDropped).Inc()
			return
		}
		wait = min(2*wait, maxNotifyBackoff)
	}
}

// post makes one attempt; retry reports whether a failure may pass
// (connection errors, timeouts, 5xx, 429).
func (n *notifier) post(ctx context.Context, rec []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.cfg.URL, bytes.NewReader(rec))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		return true, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, nil
	case c >= 500 || c == http.StatusTooManyRequests:
		return true, errors.New(resp.Status)
	default:
		return false, errors.New(resp.Status)
	}
}
