package trail

// Power loss with SyncNone (DESIGN.md, Hardening: "--sync none"; issue 8,
// "--sync none bricks on power loss"): receipts do not wait for the disk,
// but a checkpoint is signed only over records that reached it, so a
// restart after a power loss always succeeds and serves what was fsynced:
// at least every record the last checkpoint before the power loss covers.

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestPowerLossSyncNone(t *testing.T) {
	first := firstSeed(t)
	for i := 0; i < *faultsSeeds; i++ {
		seed := first + uint64(i)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { syncNoneRun(t, seed) })
	}
}

func syncNoneRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	mem := vfs.NewCrashableMem()
	const dir = "/srv/trail"
	durableDir(t, mem, dir)
	cfg := Config{
		FS:                 mem,
		Sync:               SyncNone,
		SegmentSize:        []int64{4 << 10, 16 << 10, 64 << 10}[rng.IntN(3)],
		CheckpointInterval: time.Duration(2+rng.IntN(10)) * time.Millisecond,
	}
	pct := []int{0, 10, 50, 90}[rng.IntN(4)]
	delay := time.Duration(10+rng.IntN(50)) * time.Millisecond
	t.Logf("segment size %d, checkpoint interval %v, power loss after %v keeping %d%% of unsynced blocks",
		cfg.SegmentSize, cfg.CheckpointInterval, delay, pct)

	l := openLog(t, dir, cfg, "first open")
	w := testWorkload(t, l, fmt.Sprintf("n%d", seed))
	w.start(4, seed)
	time.Sleep(delay) // when the power fails; not an assertion
	n := w.ackCount()
	cp := l.Checkpoint() // signed before the power loss
	clone := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(seed, 1))})
	acks := w.acksUpTo(n)
	w.stop()
	closeLog(t, l, "original engine")
	w.wait()

	checkVerify(t, clone, dir, "raw state after the power loss")
	cfg.FS = clone
	l2, err := Open(dir, cfg)
	if err != nil {
		t.Fatalf("restart after a power loss with sync none (the last checkpoint covered %d events): %v", cp.Size, err)
	}
	if l2.Size() < cp.Size {
		t.Errorf("after the power loss: %d events, fewer than the %d the last checkpoint covered", l2.Size(), cp.Size)
	} else if root, err := l2.Root(cp.Size); err != nil || root != cp.Root {
		t.Errorf("after the power loss: root of size %d is %s (%v), the checkpoint's %s", cp.Size, root, err, cp.Root)
	}
	var signed []acked
	for _, a := range acks {
		if a.R.Index < cp.Size {
			signed = append(signed, a)
		}
	}
	checkAcked(t, l2, signed, "after the power loss (events the last checkpoint covered)")
	checkBatches(t, l2, 0, "after the power loss")
	size := l2.Size()
	more := appendMore(t, l2, fmt.Sprintf("n%d", seed))
	closeLog(t, l2, "reopened engine")
	rep := checkVerify(t, clone, dir, "after recovery")
	if want := size + uint64(len(more)); rep.Events != want {
		t.Errorf("Verify after recovery saw %d events, want %d", rep.Events, want)
	}
	t.Logf("%d acknowledged before the power loss, %d covered by the last checkpoint, %d survived", n, cp.Size, size)
}
