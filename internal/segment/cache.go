package segment

import (
	"container/list"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// DefaultMaxOpenSealed is the number of sealed segments whose files a Log
// keeps open when Options.MaxOpenSealed is zero: two descriptors each.
//
// The server's budget is 256 descriptors besides sockets. The Pebble index
// store takes up to 128 (its MaxOpenFiles), the Merkle tree one per level (24
// at 10M events), the checkpoint log, the lock, stdio and the runtime a few:
// 32 sealed segments (65 descriptors with the active one) leave room for
// reads in flight past the cache and for the files the writer opens briefly.
const DefaultMaxOpenSealed = 32

// errClosed is returned by a read after Close.
var errClosed = errors.New("segment log is closed")

// files are the open files of one segment: its data and, once sealed, its
// offset index. f never changes; idx is set once, under cache.mu, as the
// segment is sealed, and read only by those who saw it sealed (under Log.mu)
// and acquired the files after. They are closed when the last reference is
// released.
type files struct {
	f    vfs.File
	idx  vfs.File      // nil while the segment is active
	refs atomic.Int32  // the cache's or the writer's reference, plus one per reader
	elem *list.Element // in cache.lru; nil while active or once evicted
}

// cache bounds the sealed segments whose files are open. The active segment's
// files stay open (the writer holds a reference to them); a sealed segment's
// are opened on first use and closed when it falls out of the LRU and its
// last reader releases it. A miss evicts before it opens, and passes over
// segments a reader holds, so the sealed segments' open files stay within
// two per cached segment as long as fewer reads than that are in flight;
// past that, a held segment may be evicted, its files closed when the read
// is done, and the open files exceed the bound by two per read at most. The
// active segment adds one file.
//
// Lock order: Log.mu, then cache.mu. cache.mu is held for list operations
// only, never across a system call.
type cache struct {
	fs      vfs.FS
	dir     string
	max     int
	mu      sync.Mutex
	lru     list.List // of *seg, most recently used first
	pending int       // opens under way, each to add a segment to lru
	closed  bool
}

func (c *cache) path(name string) string { return c.fs.PathJoin(c.dir, name) }

// acquire returns s's open files, opening them when s is sealed and not in
// the cache. The caller must release them.
func (c *cache) acquire(s *seg) (*files, error) {
	c.mu.Lock()
	h, err := c.hit(s)
	if h != nil || err != nil {
		c.mu.Unlock()
		return h, err
	}
	// A miss makes room first, then opens outside the lock; a racing
	// reader may open the same segment, and the loser closes its copy.
	c.pending++
	evicted := c.evict()
	c.mu.Unlock()
	closeAll(evicted)
	opened, err := c.open(s)
	c.mu.Lock()
	c.pending--
	if err != nil {
		c.mu.Unlock()
		return nil, err
	}
	if h, err = c.hit(s); h != nil || err != nil {
		c.mu.Unlock()
		opened.close()
		return h, err
	}
	opened.refs.Store(2) // the cache's and the caller's
	s.h, opened.elem = opened, c.lru.PushFront(s)
	evicted = c.evict()
	c.mu.Unlock()
	closeAll(evicted) // read-only files: nothing to lose
	return opened, nil
}

// hit counts a reference to s's files if they are open, and marks s the
// most recently used. c.mu must be held.
func (c *cache) hit(s *seg) (*files, error) {
	if c.closed {
		return nil, errClosed
	}
	h := s.h
	if h == nil {
		return nil, nil
	}
	h.refs.Add(1)
	if h.elem != nil {
		c.lru.MoveToFront(h.elem)
	}
	return h, nil
}

// open opens the files of sealed segment s.
func (c *cache) open(s *seg) (*files, error) {
	f, err := c.fs.Open(c.path(s.name))
	if err != nil {
		return nil, fmt.Errorf("open segment %s: %w", s.name, err)
	}
	idxName := strings.TrimSuffix(s.name, ".seg") + ".idx"
	idx, err := c.fs.Open(c.path(idxName))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open index %s: %w", idxName, err)
	}
	return &files{f: f, idx: idx}, nil
}

// release gives back files acquire returned, closing them if they were
// evicted meanwhile and this was the last reader. It takes no lock: the
// count only reaches zero once the cache has dropped its reference, after
// which no acquire can find the files to count them up again.
func (c *cache) release(h *files) {
	if h.refs.Add(-1) == 0 {
		h.close()
	}
}

// seal moves the active segment s, whose index idx has just been written,
// into the cache: the writer's reference becomes the cache's. It returns the
// files evicted to make room, for the caller to close.
func (c *cache) seal(s *seg, idx vfs.File) []*files {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.h.idx = idx
	s.h.elem = c.lru.PushFront(s)
	return c.evict()
}

// evict drops the least recently used segments until they and the opens
// under way fit the bound, and returns the files no reader holds any more,
// for the caller to close once it has unlocked c.mu. It passes over
// segments a reader holds, whose files would stay open past the bound until
// the read is done; it evicts one only when the cache itself is past the
// bound and every segment in it is held.
func (c *cache) evict() []*files {
	var done []*files
	for c.lru.Len() > 0 && c.lru.Len()+c.pending > c.max {
		e := c.unheld()
		if e == nil {
			if c.lru.Len() <= c.max {
				break
			}
			e = c.lru.Back()
		}
		s := c.lru.Remove(e).(*seg)
		h := s.h
		s.h, h.elem = nil, nil
		if h.refs.Add(-1) == 0 {
			done = append(done, h)
		}
	}
	return done
}

// unheld returns the least recently used segment no reader holds, or nil.
func (c *cache) unheld() *list.Element {
	for e := c.lru.Back(); e != nil; e = e.Prev() {
		// Only the cache's reference: no reader holds the files, and none
		// can take them while c.mu is held.
		if e.Value.(*seg).h.refs.Load() == 1 {
			return e
		}
	}
	return nil
}

// close drops every reference the cache and the writer hold; files a reader
// still holds are closed when it releases them. Later acquires fail.
func (c *cache) close(segs []*seg) error {
	c.mu.Lock()
	c.closed = true
	var done []*files
	for _, s := range segs {
		h := s.h
		if h == nil {
			continue
		}
		s.h = nil
		if h.elem != nil {
			c.lru.Remove(h.elem)
			h.elem = nil
		}
		if h.refs.Add(-1) == 0 {
			done = append(done, h)
		}
	}
	c.mu.Unlock()
	return closeAll(done)
}

func (h *files) close() error {
	err := h.f.Close()
	if h.idx != nil {
		err = errors.Join(err, h.idx.Close())
	}
	return err
}

func closeAll(hs []*files) error {
	var errs []error
	for _, h := range hs {
		errs = append(errs, h.close())
	}
	return errors.Join(errs...)
}
