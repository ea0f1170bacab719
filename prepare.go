package trail

import (
	"encoding/base64"
	"github.com/trailhq/trail/event"
	"github.com/trailhq/trail/internal/store"
	"slices"
	"strings"
	"sync"
)

// prepared is an event validated and encoded, ready to be sequenced.
// Preparing depends on nothing but the event, so it runs in parallel: in the
// caller's goroutine for Append, or split across goroutines for a large
// batch.
type prepared struct {
	event.Encoded
	given  bool        // the client chose the id
	entry  store.Entry // the event's indexed fields (store.EntryOf); the sequencer adds where it went
	stored int64       // index of a stored event with this id (from the index store), or -1
	err    error       // why the event cannot be stored
}

// prepareEvent validates ev and encodes it into buf. An absent id is
// assigned later, with the index (GeneratedID).
func prepareEvent(ev *Event, buf []byte) (prepared, []byte) {
	return prepareChecked(ev, buf, ev.Validate)
}

// prepareChecked is prepareEvent with the given validation.
func prepareChecked(ev *Event, buf []byte, validate func() error) (prepared, []byte) {
	p := prepared{given: ev.ID != "", stored: -1}
	if err := validate(); err != nil {
		p.err = err
		return p, buf
	}
	p.Encoded, buf, p.err = event.Encode(ev, buf)
	p.entry = store.EntryOf(ev, store.Entry{})
	return p, buf
}

// parallelPrepare is the batch size (in events) from which the sequencer
// prepares with two goroutines.
const parallelPrepare = 256

// prepareAll prepares every event of the batch not yet prepared and looks up
// client-chosen ids in the index store. It runs after pruneRecent, so an id
// dropped from the recent set is already in the store.
func (s *sequencer) prepareAll(items []*Pending) {
	s.preps = slices.Grow(s.preps[:0], len(items))[:len(items)]
	events := 0
	for _, p := range items {
		events += p.size()
	}
	if events < parallelPrepare {
		s.bodies = s.prepareRange(items, s.preps, s.bodies[:0])
		return
	}
	mid, half := 0, 0
	for mid < len(items) && half < events/2 {
		half += items[mid].size()
		mid++
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.bodies2 = s.prepareRange(items[mid:], s.preps[mid:], s.bodies2[:0])
	}()
	s.bodies = s.prepareRange(items[:mid], s.preps[:mid], s.bodies[:0])
	wg.Wait()
}

// prepareRange prepares items into preps (one each; batches keep theirs).
func (s *sequencer) prepareRange(items []*Pending, preps []prepared, buf []byte) []byte {
	for i, p := range items {
		if p.batch != nil {
			req := p.batch
			if req.preps == nil {
				req.preps = make([]prepared, len(req.evs))
				for i := range req.evs {
					req.preps[i], buf = prepareEvent(&req.evs[i], buf)
				}
			}
			for i := range req.preps {
				s.lookupStored(&req.preps[i])
			}
			continue
		}
		if p.prep != nil {
			preps[i] = *p.prep
		} else {
			preps[i], buf = prepareEvent(&p.ev, buf)
		}
		s.lookupStored(&preps[i])
	}
	return buf
}

// lookupStored finds a client-chosen id in the index store (a Batcher
// store answers for the whole batch in prefetch instead).
func (s *sequencer) lookupStored(p *prepared) {
	if p.err != nil || !p.given || s.batcher != nil {
		return
	}
	i, ok, err := s.l.st.ID(p.ID)
	switch {
	case err != nil:
		p.err = err
	case ok:
		p.stored = int64(i)
	}
}

// prepareBatch prepares a batch's events in the caller's goroutine, so that
// callers of LogBatch validate and encode in parallel and the sequencer only
// looks up their ids. Ids are not looked up here: that must follow the
// sequencer's pruning of recent ids (prepareAll).
func prepareBatch(req *batchReq, reserved bool) {
	n := 0
	for i := range req.evs {
		n += 256 + len(req.evs[i].Details)
		if o := req.evs[i].Original; o != nil {
			n += 64 + base64.StdEncoding.EncodedLen(len(o.Data))
		}
	}
	buf := make([]byte, 0, n)
	req.preps = make([]prepared, len(req.evs))
	for i := range req.evs {
		ev := &req.evs[i]
		validate := ev.Validate
		if reserved {
			validate = ev.ValidateReserved
		}
		req.preps[i], buf = prepareChecked(ev, buf, validate)
	}
}

// prefetch asks a Batcher store, in one round trip each, for the batch's
// client-chosen ids and for the heads of its streams the sequencer has not
// cached.
func (s *sequencer) prefetch(items []*Pending) error {
	var ids []string
	var preps []*prepared
	var streams []string
	want := map[string]bool{}
	add := func(p *prepared) {
		if p.err != nil {
			return
		}
		if p.given {
			ids, preps = append(ids, p.ID), append(preps, p)
		}
		if _, ok := s.heads[p.Stream]; !ok && !want[p.Stream] {
			want[p.Stream] = true
			streams = append(streams, p.Stream)
		}
	}
	for i, p := range items {
		if p.batch != nil {
			for k := range p.batch.preps {
				add(&p.batch.preps[k])
			}
		} else {
			add(&s.preps[i])
		}
	}
	if len(ids) > 0 {
		found, err := s.batcher.IDs(ids)
		if err != nil {
			return err
		}
		for _, p := range preps {
			if i, ok := found[p.ID]; ok {
				p.stored = int64(i)
			}
		}
	}
	if len(streams) > 0 {
		heads, err := s.batcher.Heads(streams)
		if err != nil {
			return err
		}
		for _, st := range streams {
			h := &streamHead{}
			if stored, ok := heads[st]; ok {
				h.seq, h.index, h.leaf = stored.Seq, stored.Index, stored.LeafHash
			}
			s.heads[strings.Clone(st)] = h
		}
	}
	return nil
}
