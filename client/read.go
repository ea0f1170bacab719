package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/trailhq/trail"
)

// maxRead bounds a read answer: a page of 1000 stored records.
const maxRead = 1000*trail.MaxStoredSize + 1<<20

// Query selects events for Client.Query (GET /v1/events). Empty fields do
// not filter; the server returns only events of streams the caller may read.
type Query struct {
	Stream  string // exact stream name
	Patient string
	Actor   string // actor.id
	Type    string
	Action  string
	Outcome string
	Since   time.Time // recorded at or after; zero: no bound
	Until   time.Time // recorded before; zero: no bound
	After   string    // the cursor from a previous Page.Next
	Limit   int       // 1-1000; 0 means the server's default (100)
	Desc    bool      // newest first
	// Purpose is the read's purpose of use, recorded with it: "system" for
	// a backup or verification by an admin (kept out of patients' views).
	Purpose string
}

func (q Query) values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("stream", q.Stream)
	set("patient", q.Patient)
	set("actor", q.Actor)
	set("type", q.Type)
	set("action", q.Action)
	set("outcome", q.Outcome)
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(trail.RecordedLayout))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(trail.RecordedLayout))
	}
	set("after", q.After)
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Desc {
		v.Set("order", "desc")
	}
	set("purpose", q.Purpose)
	return v
}

// Page is one page of query results.
type Page struct {
	// Events are the stored events, each exactly the bytes the Merkle tree
	// hashed (trail.LeafHash of one is its leaf hash).
	Events []json.RawMessage `json:"events"`
	// Next is the cursor of the following page (Query.After); empty at the end.
	Next string `json:"next"`
}

// StreamHead is the state of one stream.
type StreamHead struct {
	Stream       string     `json:"stream"`
	Length       uint64     `json:"length"`     // events in the stream
	HeadIndex    uint64     `json:"head_index"` // index of its last event
	HeadLeafHash trail.Hash `json:"head_leaf_hash"`
}

// InclusionProof proves that the event at Index is leaf Index of the tree
// of Size events (RFC 6962).
type InclusionProof struct {
	Index    uint64       `json:"index"`
	Size     uint64       `json:"size"`
	LeafHash trail.Hash   `json:"leaf_hash"`
	Hashes   []trail.Hash `json:"hashes"`
}

// ConsistencyProof proves that the tree of From events is a prefix of the
// tree of To events (RFC 6962).
type ConsistencyProof struct {
	From   uint64       `json:"from"`
	To     uint64       `json:"to"`
	Hashes []trail.Hash `json:"hashes"`
}

// Get returns the stored bytes of the event at index, exactly as hashed
// into the tree. An unknown index is an *Error matching trail.ErrNotFound.
func (c *Client) Get(ctx context.Context, index uint64) ([]byte, error) {
	return c.read(ctx, "/v1/events/"+strconv.FormatUint(index, 10), nil, "application/json")
}

// Query returns one page of the events q selects.
func (c *Client) Query(ctx context.Context, q Query) (Page, error) {
	var p Page
	err := c.getJSON(ctx, "/v1/events", q.values(), &p)
	return p, err
}

// Stream returns the head of a stream. A stream with no events is an *Error
// matching trail.ErrNotFound.
func (c *Client) Stream(ctx context.Context, name string) (StreamHead, error) {
	segs := strings.Split(name, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	var h StreamHead
	err := c.getJSON(ctx, "/v1/streams/"+strings.Join(segs, "/"), nil, &h)
	return h, err
}

// Checkpoint returns the latest signed checkpoint: a C2SP tlog-checkpoint
// signed note, to verify with the key in DIR/checkpoint.vkey.
func (c *Client) Checkpoint(ctx context.Context) ([]byte, error) {
	return c.read(ctx, "/v1/checkpoint", nil, "text/plain")
}

// InclusionProof returns the proof that the event at index is in the tree
// of size events; size 0 asks for the latest checkpoint's size.
func (c *Client) InclusionProof(ctx context.Context, index, size uint64) (InclusionProof, error) {
	v := url.Values{}
	if size != 0 {
		v.Set("size", strconv.FormatUint(size, 10))
	}
	var p InclusionProof
	err := c.getJSON(ctx, "/v1/events/"+strconv.FormatUint(index, 10)+"/proof", v, &p)
	return p, err
}

// ConsistencyProof returns the proof that the tree of from events is a
// prefix of the tree of to events.
func (c *Client) ConsistencyProof(ctx context.Context, from, to uint64) (ConsistencyProof, error) {
	v := url.Values{}
	v.Set("from", strconv.FormatUint(from, 10))
	v.Set("to", strconv.FormatUint(to, 10))
	var p ConsistencyProof
	err := c.getJSON(ctx, "/v1/proof/consistency", v, &p)
	return p, err
}

// breakGlassKey carries a break-glass reason in a context.
type breakGlassKey struct{}

// BreakGlass returns a context whose reads are emergency reads: they carry
// purpose=emergency and the reason, so that a principal granted break_glass
// may read beyond its grants. Every such read is recorded in trail/access
// and trail/break-glass. Checkpoint and ConsistencyProof, which are public,
// do not carry them.
func BreakGlass(ctx context.Context, reason string) context.Context {
	return context.WithValue(ctx, breakGlassKey{}, reason)
}

// get sends a GET and returns the response when it is a success; a refusal
// is an *Error.
func (c *Client) get(ctx context.Context, path string, v url.Values, accept string) (*http.Response, error) {
	if reason, ok := ctx.Value(breakGlassKey{}).(string); ok && !publicPath(path) {
		if v == nil {
			v = url.Values{}
		}
		v.Set("purpose", "emergency")
		v.Set("reason", reason)
	}
	u := c.base + path
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		req.Header.Set("Accept", accept)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("client: GET %s: %w", path, err)
		}
		if resp.StatusCode/100 == 2 {
			return resp, nil
		}
		err = readError(resp)
		if !c.waitReadRate(ctx, err, attempt) {
			return nil, err
		}
	}
}

// maxReadRetries bounds the attempts of a read refused for its rate.
const maxReadRetries = 20

// waitReadRate waits out a 429 that limits the caller's read rate (a
// refused read leaves no record, so asking again is safe) and reports
// whether to try again.
func (c *Client) waitReadRate(ctx context.Context, err error, attempt int) bool {
	e, ok := err.(*Error)
	if !ok || e.Status != http.StatusTooManyRequests || attempt >= maxReadRetries {
		return false
	}
	wait := min(max(e.RetryAfter, 50*time.Millisecond), 10*time.Second)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// publicPath reports whether path is a public endpoint, which reveals sizes
// and hashes only and takes no purpose.
func publicPath(path string) bool {
	return path == "/v1/checkpoint" || path == "/v1/proof/consistency"
}

// read GETs path and returns the whole answer.
func (c *Client) read(ctx context.Context, path string, v url.Values, accept string) ([]byte, error) {
	resp, err := c.get(ctx, path, v, accept)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxRead))
	if err != nil {
		return nil, fmt.Errorf("client: GET %s: read answer: %w", path, err)
	}
	return b, nil
}

func (c *Client) getJSON(ctx context.Context, path string, v url.Values, dst any) error {
	b, err := c.read(ctx, path, v, "application/json")
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return fmt.Errorf("client: GET %s: decode answer: %w", path, err)
	}
	return nil
}
