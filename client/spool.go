package client

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/durable"
)

// ErrSpoolFull is matched (errors.Is) by the error of an event logged while
// the spool holds WithSpool's maxBytes of events the server has not
// acknowledged. The event is not taken; nothing already spooled is dropped.
// The error matches trail.ErrBufferFull too.
var ErrSpoolFull = errors.New("spool full")

// A spool directory holds, all mode 0600 in a directory created 0700:
//
//	LOCK                        locked by the client using the spool
//	spool-0000000000000001.log  frames, in the order they were logged; the
//	spool-0000000000000002.log  newest file is the one being written
//	cursor                      where the first frame the server has not
//	                            acknowledged starts
//	rejected.ndjson             events the server refused, with its answer
//
// A frame is: u32 length of what follows the CRC, u32 CRC-32C of it, i64
// Unix nanoseconds of Log, u8 id length, the id, the event's JSON (little
// endian). A file is written at its end only and fsynced before any of its
// new frames is sent or a WithSpoolAck receipt is given; so after a crash
// every frame up to the last fsync is whole, and a torn tail (a frame cut
// short or failing its CRC) held nothing anyone was told about. A new
// client on the directory reads the frames from the cursor to the first
// torn one in each file and always writes a new file.
//
// The cursor is written after each acknowledged batch but not fsynced: a
// cursor lost or torn in a crash only makes the next client resend frames
// the server already has, and it answers a stored id with its first
// receipt, so none is stored twice.
const (
	spoolPrefix   = "spool-"
	spoolSuffix   = ".log"
	spoolCursor   = "cursor"
	spoolRejected = "rejected.ndjson"
	spoolLock     = "LOCK"

	frameHead  = 8     // length, CRC
	frameFixed = 8 + 1 // time, id length
	cursorSize = 8 + 8 + 8 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// spoolFile is a spool file whose frames are not all acknowledged.
type spoolFile struct {
	seq     uint64
	durable int64 // bytes written and fsynced; frames end here
	frames  int64 // frames in those bytes
	sealed  bool  // no more frames will be written to it
}

func spoolName(seq uint64) string { return fmt.Sprintf("%s%016d%s", spoolPrefix, seq, spoolSuffix) }

// spool is the on-disk queue of a client made WithSpool: Log appends a
// frame, the syncer writes and fsyncs frames in batches, the sender reads
// them back in order and posts them, and each batch the server
// acknowledges moves the cursor.
type spool struct {
	fs        vfs.FS
	dir       string
	max       int64
	segSize   int64
	ackOnSync bool
	log       *slog.Logger
	lock      io.Closer
	private   bool // the OS file system: files are made 0600

	mu         sync.Mutex
	buf        []byte          // frames logged, not written yet
	bufFrames  int64           // frames in buf
	bufSettles []settleFunc    // ackOnSync: resolved when buf is durable
	bufRecs    []trail.Receipt // ackOnSync: what they are resolved with
	waiting    []settleFunc    // !ackOnSync: Pendings of unacknowledged frames, in spool order
	whead      int             // waiting[whead:] are unresolved
	unowned    int64           // unacknowledged frames a previous client logged (no Pending)
	used       int64           // bytes of unacknowledged frames, written or not
	frames     int64           // unacknowledged frames
	logged     uint64          // frames ever taken, counting those found at start
	acked      uint64          // frames resolved: acknowledged, rejected, lost or failed
	files      []spoolFile     // oldest first; the last one is written to
	curOff     int64           // the cursor: offset in files[0]
	curFrames  int64           // frames of files[0] before curOff
	failed     error           // a write failed: no more frames are taken
	closing    bool
	progress   chan struct{} // closed and replaced when acked grows or failed is set
	oldest     int64         // Unix nanoseconds of Log of the frame at the cursor, 0 if none
	lastErr    string
	sent       uint64
	rejected   uint64
	lost       uint64
	ids        idSource // ids of events logged without one

	syncWake chan struct{}
	sendWake chan struct{}
	syncDone chan struct{}
	sendDone chan struct{}

	// Owned by the syncer.
	w vfs.File

	// Owned by the sender.
	r       vfs.File
	rseq    uint64
	cursor  vfs.File
	rejectF vfs.File
	chunk   []byte
}

// openSpool takes the spool directory: creates it (0700) if missing, locks
// it against other processes and clients, and finds the frames a previous
// client left unacknowledged.
func openSpool(fs vfs.FS, dir string, maxBytes, segSize int64, ackOnSync bool, log *slog.Logger) (*spool, error) {
	if err := durable.MkdirAll(fs, dir); err != nil {
		return nil, fmt.Errorf("client: spool: %w", err)
	}
	s := &spool{
		fs: fs, dir: dir, max: maxBytes, segSize: segSize, ackOnSync: ackOnSync, log: log,
		private:  vfs.Root(fs) == vfs.Default,
		progress: make(chan struct{}),
		syncWake: make(chan struct{}, 1), sendWake: make(chan struct{}, 1),
		syncDone: make(chan struct{}), sendDone: make(chan struct{}),
	}
	lockPath := fs.PathJoin(dir, spoolLock)
	s.private0600(lockPath)
	lock, err := fs.Lock(lockPath)
	if err != nil {
		return nil, fmt.Errorf("client: spool %s is in use by another client or process (lock %s: %w)", dir, lockPath, err)
	}
	s.lock = lock
	if err := s.recover(); err != nil {
		lock.Close()
		return nil, fmt.Errorf("client: spool %s: %w", dir, err)
	}
	return s, nil
}

// private0600 creates path, if missing, readable by its owner only on the
// OS file system, so that opening it through the file system seam (which
// creates files 0666 less the umask) finds it private from its first byte.
func (s *spool) private0600(path string) {
	if !s.private {
		return
	}
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err == nil {
		f.Close()
	}
	os.Chmod(path, 0o600) // made by an older client, or by someone else
}

// recover reads the cursor and the frames after it, and starts a new file
// to write to.
func (s *spool) recover() error {
	names, err := s.fs.List(s.dir)
	if err != nil {
		return err
	}
	var seqs []uint64
	for _, n := range names {
		if !strings.HasPrefix(n, spoolPrefix) || !strings.HasSuffix(n, spoolSuffix) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(n, spoolPrefix), spoolSuffix), 10, 64)
		if err != nil || spoolName(seq) != n {
			continue
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	cseq, coff, cok := s.readCursor()
	next := uint64(1)
	for _, seq := range seqs {
		next = seq + 1
		if cok && seq < cseq { // acknowledged; removing it was cut short
			if err := s.fs.Remove(s.fs.PathJoin(s.dir, spoolName(seq))); err != nil {
				return err
			}
			continue
		}
		f := spoolFile{seq: seq, sealed: true}
		from := int64(0)
		if cok && seq == cseq {
			from = coff
		}
		size, frames, oldest, torn, err := s.scan(seq, from)
		if err != nil {
			return err
		}
		if torn != "" {
			s.log.Warn("trail spool: a file ends with a torn frame, written but never fsynced (so never acknowledged to anyone): ignored",
				"file", spoolName(seq), "offset", size, "why", torn)
		}
		if len(s.files) == 0 {
			s.curOff = from
			if oldest != 0 {
				s.oldest = oldest
			}
		}
		f.durable, f.frames = size, frames
		s.files = append(s.files, f)
		s.used += size - from
		s.frames += frames
	}
	// files[0].frames counts the frames from the cursor on, so curFrames
	// starts at 0.
	s.unowned = s.frames
	s.logged = uint64(s.frames)
	return s.startFile(next)
}

// scan reads the frames of file seq from offset from, stopping at its end
// or at the first torn frame. It returns where the whole frames end, how
// many there are, the Log time of the first, and why it stopped early.
func (s *spool) scan(seq uint64, from int64) (end, frames, first int64, torn string, err error) {
	f, err := s.fs.Open(s.fs.PathJoin(s.dir, spoolName(seq)))
	if err != nil {
		return 0, 0, 0, "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, 0, "", err
	}
	size := st.Size()
	if from > size {
		return size, 0, 0, "", nil // the cursor is past a tail a crash took away
	}
	data := make([]byte, size-from)
	if _, err := f.ReadAt(data, from); err != nil && !errors.Is(err, io.EOF) {
		return 0, 0, 0, "", err
	}
	off := 0
	for off < len(data) {
		fr, n, why := decodeFrame(data[off:])
		if why != "" {
			return from + int64(off), frames, first, why, nil
		}
		if frames == 0 {
			first = fr.logged
		}
		frames++
		off += n
	}
	return from + int64(off), frames, first, "", nil
}

// readCursor reads the cursor; ok is false when there is none or it is torn.
func (s *spool) readCursor() (seq uint64, off int64, ok bool) {
	f, err := s.fs.Open(s.fs.PathJoin(s.dir, spoolCursor))
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	var b [cursorSize]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return 0, 0, false
	}
	if crc32.Checksum(b[:24], castagnoli) != binary.LittleEndian.Uint32(b[24:]) {
		return 0, 0, false
	}
	return binary.LittleEndian.Uint64(b[0:]), int64(binary.LittleEndian.Uint64(b[8:])), true
}

// startFile creates spool file seq, durable before anything is written to
// it, and makes it the one written to.
func (s *spool) startFile(seq uint64) error {
	path := s.fs.PathJoin(s.dir, spoolName(seq))
	s.private0600(path)
	// Not Create: on the OS file system it removes the file made private
	// above and makes another. The file is new: seq is past every file.
	f, err := s.fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	if err := durable.SyncDir(s.fs, s.dir); err != nil {
		f.Close()
		return err
	}
	if s.w != nil {
		s.w.Close()
	}
	s.w = f
	s.mu.Lock()
	if n := len(s.files); n > 0 {
		s.files[n-1].sealed = true
	}
	s.files = append(s.files, spoolFile{seq: seq})
	s.mu.Unlock()
	return nil
}

// frame is one spooled event as the sender reads it back.
type frame struct {
	logged  int64
	id      string
	payload []byte // the event's JSON, exactly as first encoded
	size    int64  // bytes of the whole frame

	done bool
	rec  trail.Receipt
	err  error // the server refused it
}

// appendFrame appends the frame of an event to dst.
func appendFrame(dst []byte, logged time.Time, id string, payload []byte) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(frameFixed+len(id)+len(payload)))
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	body := len(dst)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(logged.UnixNano()))
	dst = append(dst, byte(len(id)))
	dst = append(dst, id...)
	dst = append(dst, payload...)
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[body:], castagnoli))
	return dst
}

// decodeFrame decodes the frame at the start of b; why says what is wrong
// with a torn or damaged one.
func decodeFrame(b []byte) (fr frame, n int, why string) {
	if len(b) < frameHead {
		return fr, 0, "cut short in its header"
	}
	l := int(binary.LittleEndian.Uint32(b))
	if l < frameFixed || l > frameFixed+255+trail.MaxEventSize {
		return fr, 0, fmt.Sprintf("impossible length %d", l)
	}
	if len(b) < frameHead+l {
		return fr, 0, "cut short"
	}
	body := b[frameHead : frameHead+l]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return fr, 0, "CRC mismatch"
	}
	idLen := int(body[8])
	if frameFixed+idLen > l {
		return fr, 0, "id longer than the frame"
	}
	fr.logged = int64(binary.LittleEndian.Uint64(body))
	fr.id = string(body[frameFixed : frameFixed+idLen])
	fr.payload = body[frameFixed+idLen:]
	fr.size = int64(frameHead + l)
	return fr, frameHead + l, ""
}

// add takes the frame of one event; settle is its Pending.
func (s *spool) add(fr []byte, rec trail.Receipt, settle settleFunc) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return trail.ErrClosed
	}
	if s.failed != nil {
		s.mu.Unlock()
		return s.failed
	}
	if s.used+int64(len(fr)) > s.max {
		used := s.used
		s.mu.Unlock()
		return fmt.Errorf("client: %w (%w): %d bytes of events are waiting for the server in %s, and WithSpool allows %d",
			ErrSpoolFull, trail.ErrBufferFull, used, s.dir, s.max)
	}
	wake := len(s.buf) == 0
	s.buf = append(s.buf, fr...)
	s.bufFrames++
	s.used += int64(len(fr))
	s.frames++
	s.logged++
	if s.ackOnSync {
		s.bufSettles = append(s.bufSettles, settle)
		s.bufRecs = append(s.bufRecs, rec)
	} else {
		s.waiting = append(s.waiting, settle)
	}
	s.mu.Unlock()
	if wake {
		signal(s.syncWake)
	}
	return nil
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// nextID gives an event without an id its id.
func (s *spool) nextID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids.next()
}

// syncLoop writes and fsyncs the frames logged, a batch at a time: all
// that were logged while the previous batch was written.
func (s *spool) syncLoop() {
	defer close(s.syncDone)
	var out []byte
	for {
		s.mu.Lock()
		for len(s.buf) == 0 && !s.closing {
			s.mu.Unlock()
			<-s.syncWake
			s.mu.Lock()
		}
		if len(s.buf) == 0 {
			s.mu.Unlock()
			return
		}
		out, s.buf = s.buf, out[:0]
		n := s.bufFrames
		settles, recs := s.bufSettles, s.bufRecs
		s.bufFrames, s.bufSettles, s.bufRecs = 0, nil, nil
		s.mu.Unlock()

		err := s.write(out, n)
		if err != nil {
			s.fail(err, n, int64(len(out)), settles)
			continue
		}
		for i, settle := range settles {
			settle(recs[i], false, nil)
		}
		signal(s.sendWake)
		if cap(out) > 4<<20 {
			out = nil
		}
	}
}

// write appends n frames to the file written, starting a new file first
// when it is full, and fsyncs them.
func (s *spool) write(out []byte, n int64) error {
	s.mu.Lock()
	full := s.files[len(s.files)-1].durable >= s.segSize
	seq := s.files[len(s.files)-1].seq
	s.mu.Unlock()
	if full {
		if err := s.startFile(seq + 1); err != nil {
			return err
		}
	}
	size := int64(len(out))
	if _, err := s.w.Write(out); err != nil {
		return err
	}
	if err := s.w.Sync(); err != nil {
		return err
	}
	s.mu.Lock()
	f := &s.files[len(s.files)-1]
	f.durable += size
	f.frames += n
	s.mu.Unlock()
	return nil
}

// fail stops the spool after a write or fsync failed: the file's end is
// unknown, so no more frames are taken. The n frames that failed and those
// logged since fail too; the frames written before still go to the server.
func (s *spool) fail(err error, n, size int64, settles []settleFunc) {
	err = fmt.Errorf("client: spool %s: a write or fsync failed, so no more events are taken; this event's bytes may or may not have reached the disk (a client opened on the spool later sends any that did): %w", s.dir, err)
	s.log.Error("trail spool failed", "err", err)
	s.mu.Lock()
	s.failed = err
	lost := n + s.bufFrames
	settles = append(settles, s.bufSettles...)
	s.used -= size + int64(len(s.buf))
	s.buf, s.bufFrames, s.bufSettles, s.bufRecs = nil, 0, nil, nil
	s.frames -= lost
	s.acked += uint64(lost) // resolved, with err
	if !s.ackOnSync {
		k := len(s.waiting) - int(lost)
		settles = append(settles, s.waiting[k:]...)
		s.waiting = s.waiting[:k]
	}
	s.wakeProgress()
	s.mu.Unlock()
	for _, settle := range settles {
		settle(trail.Receipt{}, false, err)
	}
	signal(s.sendWake)
}

// wakeProgress wakes whoever waits for acknowledgements; under mu.
func (s *spool) wakeProgress() {
	close(s.progress)
	s.progress = make(chan struct{})
}
