package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trailhq/trail"
)

// Stats is a snapshot of what a client holds and has sent, for metrics.
type Stats struct {
	// Buffered is how many events are held in memory, queued or in flight
	// (without a spool).
	Buffered int64
	// Spooled is how many events are in the spool and not yet acknowledged
	// by the server, counting those a previous run left; SpooledBytes is
	// their size as spooled.
	Spooled      int64
	SpooledBytes int64
	// OldestAge is how long ago the oldest event not yet acknowledged was
	// logged (with a spool; zero when the spool is empty).
	OldestAge time.Duration
	// Sent is how many events the server has acknowledged since New.
	Sent uint64
	// Rejected is how many events the server refused since New (with a
	// spool, they are in rejected.ndjson).
	Rejected uint64
	// Lost is how many spooled events could not be read back because a
	// spool file was damaged on disk after it was written.
	Lost uint64
	// LastError is the last failure to send, empty after a success.
	LastError string
}

// Stats reports what the client holds and has sent.
func (c *Client) Stats() Stats {
	s := c.spool
	if s == nil {
		return Stats{Buffered: c.used.Load(), Sent: c.sent.Load()}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{
		Spooled: s.frames, SpooledBytes: s.used,
		Sent: s.sent, Rejected: s.rejected, Lost: s.lost, LastError: s.lastErr,
	}
	if s.oldest != 0 && s.frames > 0 {
		st.OldestAge = max(0, time.Since(time.Unix(0, s.oldest)))
	}
	return st
}

// spoolFrame validates nothing (Log did): it sets the event's time and id
// when missing and encodes its frame.
func (c *Client) spoolFrame(ev trail.Event) ([]byte, trail.Receipt, error) {
	now := time.Now()
	if ev.Time.IsZero() {
		ev.Time = now.UTC()
	}
	if ev.ID == "" {
		ev.ID = c.spool.nextID()
	}
	payload, err := ev.AppendJSON(make([]byte, 0, 512))
	if err == nil && len(payload) > trail.MaxEventSize {
		err = &trail.ValidationError{Field: "(event)", Err: trail.ErrTooLarge,
			Reason: fmt.Sprintf("is %d bytes as JSON; a whole event is at most %d", len(payload), trail.MaxEventSize)}
	}
	if err != nil {
		return nil, trail.Receipt{}, err
	}
	fr := appendFrame(make([]byte, 0, frameHead+frameFixed+len(ev.ID)+len(payload)), now, ev.ID, payload)
	return fr, trail.Receipt{ID: ev.ID, Stream: ev.Stream}, nil
}

// logSpooled spools a valid event whose Pending is settle.
func (c *Client) logSpooled(ev trail.Event, settle settleFunc) error {
	fr, rec, err := c.spoolFrame(ev)
	if err != nil {
		return err
	}
	return c.spool.add(fr, rec, settle)
}

// enqueueSpooled spools a valid event, waiting under ctx while the spool is
// full. An event that cannot be encoded fails its Pending, as Log does.
func (c *Client) enqueueSpooled(ctx context.Context, ev trail.Event, settle settleFunc) error {
	fr, rec, err := c.spoolFrame(ev)
	if err != nil {
		settle(trail.Receipt{}, false, err)
		return nil
	}
	s := c.spool
	for {
		s.mu.Lock()
		progress := s.progress
		s.mu.Unlock()
		err := s.add(fr, rec, settle)
		if !errors.Is(err, ErrSpoolFull) {
			return err
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// flush waits until every event spooled before the call is acknowledged or
// refused by the server.
func (s *spool) flush(ctx context.Context) error {
	s.mu.Lock()
	mark := s.logged
	s.mu.Unlock()
	for {
		s.mu.Lock()
		done, progress := s.acked >= mark, s.progress
		s.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// closeSpool stops taking events, lets the syncer write out what was
// logged and the sender send it until the spool is empty or ctx ends, then
// unlocks the spool.
func (c *Client) closeSpool(ctx context.Context) error {
	s := c.spool
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	signal(s.syncWake)
	var err error
	select {
	case <-s.sendDone:
	case <-ctx.Done():
		c.abort(ctx.Err())
		<-s.sendDone
		err = fmt.Errorf("client: close: %w; the events not yet acknowledged stay in the spool %s", ctx.Err(), s.dir)
	}
	<-s.syncDone
	c.abort(trail.ErrClosed)
	s.mu.Lock()
	settles := s.settled(s.frames)
	s.mu.Unlock()
	left := fmt.Errorf("client: %w before the server acknowledged the event; it stays in the spool %s, and the next client opened on it sends it",
		trail.ErrClosed, s.dir)
	for _, settle := range settles {
		settle(trail.Receipt{}, false, left)
	}
	if s.w != nil {
		if cerr := s.w.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("client: close spool: %w", cerr)
		}
	}
	s.lock.Close()
	if c.ownHC {
		c.hc.CloseIdleConnections()
	}
	return err
}
