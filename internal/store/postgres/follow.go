package postgres

import (
	"context"
	"strconv"
	"time"
)

// Follow has the store call fn when another process's commit grows the log.
func (s *Store) Follow(fn func(size uint64)) {
	s.followMu.Lock()
	s.followFn = fn
	s.followMu.Unlock()
}

// committed reports a committed log length to the follower.
func (s *Store) committed(n uint64) {
	s.followMu.Lock()
	defer s.followMu.Unlock()
	if n > s.known {
		s.known = n
		if s.followFn != nil {
			s.followFn(n)
		}
	}
}

// follow listens for the commits' notifications, and reads the log's end
// every FollowEvery besides (a notification is lost while the listening
// connection is down), until Close.
func (s *Store) follow() {
	defer close(s.followDone)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stop
		cancel()
	}()
	for ctx.Err() == nil {
		s.listen(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(s.opts.FollowEvery):
		}
	}
}

// listen holds one listening session until it fails or ctx ends.
func (s *Store) listen(ctx context.Context) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return
	}
	conn := pc.Hijack()
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN trail_log"); err != nil {
		return
	}
	for {
		if n, _, err := s.end(ctx, conn); err == nil {
			s.committed(n)
		} else {
			return
		}
		wctx, wcancel := context.WithTimeout(ctx, s.opts.FollowEvery)
		note, err := conn.WaitForNotification(wctx)
		wcancel()
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			if n, perr := strconv.ParseUint(note.Payload, 10, 64); perr == nil {
				s.committed(n)
			}
		case wctx.Err() != nil:
			// No notification within FollowEvery: read the end again.
		default:
			return
		}
	}
}
