package client

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailhq/trail"
)

// spoolChunk is how much of a spool file the sender reads at a time; it
// holds at least one whole frame, whose JSON is at most trail.MaxEventSize.
const spoolChunk = 4 << 20

// refusedWait is the longest the sender waits between attempts while the
// server refuses a whole batch for a reason sending again cannot change by
// itself (a revoked token, a wrong URL); transient failures back off to
// backoffMax.
const refusedWait = 30 * time.Second

// sendLoop posts the spooled frames in order, one batch at a time, until
// the client is closed with nothing left or gives up.
func (s *spool) sendLoop(c *Client) {
	defer close(s.sendDone)
	defer s.closeFiles()
	send := sender{c: c}
	for {
		b, ok := s.next(c)
		if !ok {
			return
		}
		if !s.deliver(c, &send, b) {
			return
		}
		s.ack(b)
	}
}

// next reads the next batch of frames from the cursor on, waiting for the
// syncer to make some durable. It reports false when the client is closed
// and every frame was sent, or Close gave up.
func (s *spool) next(c *Client) ([]frame, bool) {
	for {
		s.mu.Lock()
		removed := s.advance()
		f := s.files[0]
		from := s.curOff
		s.mu.Unlock()
		s.remove(removed)
		if from < f.durable {
			if b := s.read(c, f.seq, from, f.durable); len(b) > 0 {
				return b, true
			}
			continue // the rest of the file was damaged and skipped
		}
		select {
		case <-s.syncDone: // closing, and everything logged is written
			s.mu.Lock()
			more := s.curOff < s.files[0].durable || len(s.files) > 1
			s.mu.Unlock()
			if !more {
				return nil, false
			}
		case <-s.sendWake:
		case <-c.runCtx.Done():
			return nil, false
		}
	}
}

// advance drops files[0] when all its frames are acknowledged and a newer
// file follows; under mu. It returns the files to remove.
func (s *spool) advance() []uint64 {
	var removed []uint64
	for len(s.files) > 1 && s.files[0].sealed && s.curOff >= s.files[0].durable {
		removed = append(removed, s.files[0].seq)
		s.files = s.files[1:]
		s.curOff, s.curFrames = 0, 0
	}
	return removed
}

// remove deletes acknowledged files, after the cursor says so.
func (s *spool) remove(seqs []uint64) {
	if len(seqs) == 0 {
		return
	}
	s.writeCursor()
	for _, seq := range seqs {
		if s.r != nil && s.rseq == seq {
			s.r.Close()
			s.r = nil
		}
		if err := s.fs.Remove(s.fs.PathJoin(s.dir, spoolName(seq))); err != nil {
			s.log.Warn("trail spool: could not remove an acknowledged file; the next client removes it", "file", spoolName(seq), "err", err)
		}
	}
}

// read decodes a batch of frames of file seq from offset from (before to,
// where the durable frames end): at most the batch size, and less than the
// server's body limit. A damaged frame (the file changed on disk after it
// was fsynced) ends the file: what follows cannot be framed, and is counted
// lost, logged, and its Pendings failed.
func (s *spool) read(c *Client, seq uint64, from, to int64) []frame {
	if s.r == nil || s.rseq != seq {
		if s.r != nil {
			s.r.Close()
		}
		r, err := s.fs.Open(s.fs.PathJoin(s.dir, spoolName(seq)))
		if err != nil {
			s.skipDamaged(seq, fmt.Sprintf("open: %v", err))
			return nil
		}
		s.r, s.rseq = r, seq
	}
	n := min(to-from, spoolChunk)
	if int64(cap(s.chunk)) < n {
		s.chunk = make([]byte, n)
	}
	data := s.chunk[:n]
	if _, err := s.r.ReadAt(data, from); err != nil && !errors.Is(err, io.EOF) {
		s.skipDamaged(seq, fmt.Sprintf("read at %d: %v", from, err))
		return nil
	}
	var b []frame
	body := 0
	for off := 0; off < len(data) && len(b) < c.cfg.batchSize; {
		fr, k, why := decodeFrame(data[off:])
		if why != "" {
			if len(b) > 0 {
				break // send what was read; the next read starts at this frame
			}
			s.skipDamaged(seq, fmt.Sprintf("frame at %d: %s", from+int64(off), why))
			return nil
		}
		if len(b) > 0 && body+len(fr.payload)+1 > maxBody {
			break
		}
		body += len(fr.payload) + 1
		b = append(b, fr)
		off += k
	}
	s.mu.Lock()
	if len(b) > 0 {
		s.oldest = b[0].logged
	}
	s.mu.Unlock()
	return b
}

// skipDamaged gives up the rest of file seq from the cursor.
func (s *spool) skipDamaged(seq uint64, why string) {
	s.mu.Lock()
	f := s.files[0]
	lost := f.frames - s.curFrames
	size := f.durable - s.curOff
	s.curOff, s.curFrames = f.durable, f.frames
	settles := s.settled(lost)
	s.lost += uint64(lost)
	s.acked += uint64(lost)
	s.frames -= lost
	s.used -= size
	s.wakeProgress()
	s.mu.Unlock()
	err := fmt.Errorf("client: spool file %s is damaged (%s): the event is lost", s.fs.PathJoin(s.dir, spoolName(seq)), why)
	s.log.Error("trail spool: a file changed on disk after it was written; its remaining events cannot be read",
		"file", spoolName(seq), "why", why, "events", lost)
	for _, settle := range settles {
		settle(trail.Receipt{}, false, err)
	}
	s.writeCursor()
}

// settled takes the Pendings of the next n frames acknowledged, those a
// previous client logged having none; under mu.
func (s *spool) settled(n int64) []settleFunc {
	if s.ackOnSync {
		s.unowned = max(0, s.unowned-n)
		return nil
	}
	skip := min(n, s.unowned)
	s.unowned -= skip
	own := int(n - skip)
	out := make([]settleFunc, own)
	copy(out, s.waiting[s.whead:s.whead+own])
	clear(s.waiting[s.whead : s.whead+own])
	s.whead += own
	if s.whead > 4096 && s.whead > len(s.waiting)/2 {
		k := copy(s.waiting, s.waiting[s.whead:])
		clear(s.waiting[k:])
		s.waiting, s.whead = s.waiting[:k], 0
	}
	return out
}

// deliver posts the batch until the server has acknowledged or refused
// each of its frames. Failures that sending again can mend (the network,
// 5xx, 429, a revoked token put back) are retried without end: the frames
// stay in the spool. A line the server refuses (400, 403, 409, 413 naming
// it) is rejected alone. It reports false when Close gives up.
func (s *spool) deliver(c *Client, send *sender, b []frame) bool {
	var bo backoff
	lo, hi := 0, len(b)
	for attempt := 1; lo < len(b); attempt++ {
		if liveFrames(b[lo:hi]) == 0 {
			lo, hi = hi, len(b)
			continue
		}
		recs, err := send.post(c.runCtx, s.encode(send, b[lo:hi]))
		if c.runCtx.Err() != nil {
			return false
		}
		if err == nil {
			if matchReceipts(b[lo:hi], recs) {
				bo, attempt = backoff{}, 0
				s.noteErr(nil)
				lo, hi = hi, len(b)
				continue
			}
			err = fmt.Errorf("client: the server's %d receipts do not match the %d events sent; sending them again with the same ids", len(recs), liveFrames(b[lo:hi]))
		}
		e := statusError(err)
		if e != nil && e.Line > 0 && classify(e) == actLine && rejectLine(b[lo:hi], e) {
			continue
		}
		if e != nil && (e.Status == http.StatusRequestEntityTooLarge || e.Status == http.StatusBadRequest) {
			// Too large, or a refusal naming no line: halve the batch
			// until the event it is about is alone, then reject that one.
			if n := liveFrames(b[lo:hi]); n > 1 {
				hi = lo + halfLive(b[lo:hi])
			} else {
				rejectLine(b[lo:hi], &Error{Status: e.Status, Line: 1, Title: e.Title, Detail: e.Detail})
			}
			continue
		}
		s.noteErr(err)
		var hint time.Duration
		if e != nil {
			hint = e.RetryAfter
		}
		wait := bo.next(hint)
		if classify(e) == actFail {
			wait = max(wait, min(refusedWait, time.Duration(attempt)*time.Second))
		}
		if attempt == 1 || attempt%60 == 0 {
			s.log.Warn("trail spool: batch not stored; it stays in the spool and is sent again with the same ids",
				"events", liveFrames(b[lo:hi]), "attempt", attempt, "wait", wait, "err", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-c.runCtx.Done():
			t.Stop()
			return false
		}
	}
	return true
}

// encode joins the JSON of the frames not yet resolved, one per line,
// exactly as they were first encoded: a resend is byte for byte the same.
func (s *spool) encode(send *sender, b []frame) []byte {
	buf := send.buffer()
	for i := range b {
		if !b[i].done {
			buf = append(buf, b[i].payload...)
			buf = append(buf, '\n')
		}
	}
	send.body = buf
	return buf
}

func liveFrames(b []frame) int {
	n := 0
	for i := range b {
		if !b[i].done {
			n++
		}
	}
	return n
}

// halfLive is the length of the prefix of b holding half its live frames.
func halfLive(b []frame) int {
	want, seen := liveFrames(b)/2, 0
	for i := range b {
		if seen == want {
			return i
		}
		if !b[i].done {
			seen++
		}
	}
	return len(b)
}

// matchReceipts resolves the live frames of b with the receipts, if they
// are one per frame with the same ids; otherwise it changes nothing.
func matchReceipts(b []frame, recs []trail.Receipt) bool {
	j := 0
	for i := range b {
		if b[i].done {
			continue
		}
		if j >= len(recs) || recs[j].ID != b[i].id {
			return false
		}
		j++
	}
	if j != len(recs) {
		return false
	}
	j = 0
	for i := range b {
		if !b[i].done {
			b[i].done, b[i].rec = true, recs[j]
			j++
		}
	}
	return true
}

// rejectLine marks the live frame on e's line refused; false if none is.
func rejectLine(b []frame, e *Error) bool {
	line := 0
	for i := range b {
		if b[i].done {
			continue
		}
		if line++; line == e.Line {
			b[i].done, b[i].err = true, e
			return true
		}
	}
	return false
}

// noteErr keeps the last failure for Stats; nil after a success.
func (s *spool) noteErr(err error) {
	s.mu.Lock()
	if err == nil {
		s.lastErr = ""
	} else {
		s.lastErr = err.Error()
	}
	s.mu.Unlock()
}

// ack moves the cursor past a resolved batch: refused events go to the
// rejected file first (fsynced), then the cursor moves and the Pendings
// are resolved.
func (s *spool) ack(b []frame) {
	var size int64
	var sent, refused uint64
	for i := range b {
		size += b[i].size
		if b[i].err != nil {
			refused++
		} else {
			sent++
		}
	}
	if refused > 0 {
		s.writeRejected(b)
	}
	n := int64(len(b))
	s.mu.Lock()
	s.curOff += size
	s.curFrames += n
	settles := s.settled(n)
	s.acked += uint64(n)
	s.frames -= n
	s.used -= size
	s.sent += sent
	s.rejected += refused
	if s.frames == 0 {
		s.oldest = 0
	}
	removed := s.advance()
	s.mu.Unlock()
	if len(removed) > 0 {
		s.remove(removed)
	} else {
		s.writeCursor()
	}
	s.mu.Lock()
	s.wakeProgress() // Flush returns with the cursor written
	s.mu.Unlock()
	own := b[len(b)-len(settles):]
	for i, settle := range settles {
		settle(own[i].rec, false, own[i].err)
	}
}

// writeCursor writes where the first unacknowledged frame starts. It is not
// fsynced: an older cursor after a crash only resends what the server has.
func (s *spool) writeCursor() {
	s.mu.Lock()
	seq, off := s.files[0].seq, s.curOff
	s.mu.Unlock()
	if s.cursor == nil {
		path := s.fs.PathJoin(s.dir, spoolCursor)
		s.private0600(path)
		f, err := s.fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
		if err != nil {
			s.log.Warn("trail spool: cannot write the cursor; the next client resends what the server has", "err", err)
			return
		}
		s.cursor = f
	}
	var b [cursorSize]byte
	binary.LittleEndian.PutUint64(b[0:], seq)
	binary.LittleEndian.PutUint64(b[8:], uint64(off))
	binary.LittleEndian.PutUint32(b[24:], crc32.Checksum(b[:24], castagnoli))
	if _, err := s.cursor.WriteAt(b[:], 0); err != nil {
		s.log.Warn("trail spool: cannot write the cursor; the next client resends what the server has", "err", err)
	}
}

// writeRejected appends the refused events of b to the rejected file, each
// with the server's answer, and fsyncs it. If that fails the events are
// logged at Error level with their JSON: refused, but not lost silently.
func (s *spool) writeRejected(b []frame) {
	var out []byte
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for i := range b {
		if b[i].err == nil {
			continue
		}
		msg, _ := json.Marshal(b[i].err.Error())
		out = append(out, `{"rejected":"`...)
		out = append(out, now...)
		out = append(out, `","error":`...)
		out = append(out, msg...)
		out = append(out, `,"event":`...)
		out = append(out, b[i].payload...)
		out = append(out, "}\n"...)
	}
	err := s.appendRejected(out)
	for i := range b {
		if b[i].err == nil {
			continue
		}
		if err != nil {
			s.log.Error("trail spool: the server refused an event, and it could not be written to the rejected file",
				"id", b[i].id, "refusal", b[i].err, "err", err, "event", string(b[i].payload))
		} else {
			s.log.Warn("trail spool: the server refused an event; it is kept in the rejected file",
				"id", b[i].id, "refusal", b[i].err, "file", s.fs.PathJoin(s.dir, spoolRejected))
		}
	}
}

func (s *spool) appendRejected(out []byte) error {
	if s.rejectF == nil {
		path := s.fs.PathJoin(s.dir, spoolRejected)
		s.private0600(path)
		f, err := s.fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
		if err != nil {
			return err
		}
		s.rejectF = f
	}
	st, err := s.rejectF.Stat()
	if err != nil {
		return err
	}
	if _, err := s.rejectF.WriteAt(out, st.Size()); err != nil {
		return err
	}
	return s.rejectF.Sync()
}

// closeFiles closes the sender's files when it ends.
func (s *spool) closeFiles() {
	for _, f := range []vfs.File{s.r, s.cursor, s.rejectF} {
		if f != nil {
			f.Close()
		}
	}
	s.r, s.cursor, s.rejectF = nil, nil, nil
}
