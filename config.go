package trail

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// SyncMode says when appended events are made durable.
type SyncMode string

// Sync modes.
const (
	// SyncAlways fsyncs every batch before its receipts are given (the default).
	SyncAlways SyncMode = "always"
	// SyncNone never waits for fsync: receipts mean "written to the OS", and a
	// power loss can lose acknowledged events. Each checkpoint first makes
	// the records it covers durable, so a restart after a power loss comes
	// back with at least the latest checkpoint's events. For benchmarks and
	// tests only.
	SyncNone SyncMode = "none"
)

// Config configures an engine. The zero value of each field means its
// default, so Config{} works.
type Config struct {
	// Sync is SyncAlways (default) or SyncNone.
	Sync SyncMode
	// QueueSize bounds the events accepted but not yet stored (default
	// 1<<20). When it is full, Log fails with ErrBufferFull and Enqueue waits.
	QueueSize int
	// MaxBatchBytes bounds one group-commit write (default 8 MiB): the
	// sequencer takes queued events while their records' estimated sizes
	// fit. A single atomic batch larger than this is still written whole.
	MaxBatchBytes int
	// SegmentSize is the size at which a segment file is sealed (default 64 MiB).
	SegmentSize int64
	// MaxStreamHeads bounds the streams whose last event the sequencer keeps
	// in memory (default 100,000: about 136 bytes each, 14 MB). A stream not among them is
	// looked up in the index store on its next event; the bound keeps memory
	// independent of how many streams the log holds.
	MaxStreamHeads int
	// CheckpointInterval is how often a checkpoint is signed when the tree
	// has grown (default 1s).
	CheckpointInterval time.Duration
	// Origin names the log in its checkpoints; used only when the data
	// directory is created (default "trail/<random>").
	Origin string
	// Logger receives the engine's logs (default: discard).
	Logger *slog.Logger
	// FS is the file system the engine writes through (default: the OS). Tests
	// use it to inject faults and to simulate power loss.
	FS vfs.FS
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	c := Config{}
	c.fill()
	return c
}

func (c *Config) fill() {
	if c.Sync == "" {
		c.Sync = SyncAlways
	}
	if c.QueueSize == 0 {
		c.QueueSize = 1 << 20
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = 8 << 20
	}
	if c.SegmentSize == 0 {
		c.SegmentSize = 64 << 20
	}
	if c.MaxStreamHeads == 0 {
		c.MaxStreamHeads = 100_000
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.FS == nil {
		c.FS = vfs.Default
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	c.fill()
	var errs []error
	if c.Sync != SyncAlways && c.Sync != SyncNone {
		errs = append(errs, fmt.Errorf("sync mode %q: want %q or %q", c.Sync, SyncAlways, SyncNone))
	}
	if c.QueueSize < 1 {
		errs = append(errs, fmt.Errorf("queue size %d: want at least 1", c.QueueSize))
	}
	if c.MaxBatchBytes < 1<<10 {
		errs = append(errs, fmt.Errorf("max batch bytes %d: want at least 1024", c.MaxBatchBytes))
	}
	if c.SegmentSize < 1<<10 || c.SegmentSize > 1<<31 {
		errs = append(errs, fmt.Errorf("segment size %d: want 1 KiB to 2 GiB", c.SegmentSize))
	}
	if c.MaxStreamHeads < 1 {
		errs = append(errs, fmt.Errorf("max stream heads %d: want at least 1", c.MaxStreamHeads))
	}
	if c.CheckpointInterval < time.Millisecond {
		errs = append(errs, fmt.Errorf("checkpoint interval %v: want at least 1ms", c.CheckpointInterval))
	}
	if c.Origin != "" {
		if err := checkOrigin(c.Origin); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func checkOrigin(o string) error {
	for i := 0; i < len(o); i++ {
		if c := o[i]; c <= ' ' || c == '+' || c >= 0x7f {
			return fmt.Errorf("origin %q: byte %d (%q) not allowed (no spaces, '+' or non-ASCII)", o, i, c)
		}
	}
	return nil
}
