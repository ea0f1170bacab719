package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// RSSWatch follows the peak resident set of processes from WatchRSS to Stop.
//
// Linux keeps each process's peak (VmHWM in /proc/PID/status) and resets it
// to the current resident set when "5" is written to /proc/PID/clear_refs,
// which a process may do to itself, and root or the owner to another. When
// that write fails (an older kernel, or no permission), VmRSS is sampled
// every rssSampleEvery instead, which can miss a peak shorter than that.
type RSSWatch struct {
	pids []int // 0 for this process
	// sampling, when the peaks could not be reset:
	stopSampler chan struct{}
	sampled     chan rssSample
}

type rssSample struct {
	kb  int64
	err error
}

const rssSampleEvery = 50 * time.Millisecond

// WatchRSS starts watching the processes pids (0 for this one). Stop reports
// the sum of their peaks.
func WatchRSS(pids ...int) *RSSWatch {
	w := &RSSWatch{pids: pids}
	if sampleRSS {
		w.startSampler()
		return w
	}
	for _, pid := range pids {
		if err := os.WriteFile(procFile(pid, "clear_refs"), []byte("5"), 0); err != nil {
			w.startSampler()
			break
		}
	}
	return w
}

// startSampler samples the sum of the processes' VmRSS until Stop and keeps
// the largest.
func (w *RSSWatch) startSampler() {
	w.stopSampler, w.sampled = make(chan struct{}), make(chan rssSample, 1)
	go func() {
		t := time.NewTicker(rssSampleEvery)
		defer t.Stop()
		var peak rssSample
		sample := func() {
			kb, err := sumStatus(w.pids, "VmRSS:")
			if err != nil && peak.err == nil {
				peak.err = err
			}
			peak.kb = max(peak.kb, kb)
		}
		sample()
		for {
			select {
			case <-t.C:
				sample()
			case <-w.stopSampler:
				sample()
				w.sampled <- peak
				return
			}
		}
	}()
}

// Stop ends the watch and returns the sum of the processes' peak resident
// sets in MB (2^20 bytes), the sum of each one's own peak (an upper bound of
// their peak together) when they are several. ok is false when a process's
// figures could not be read, for one that has exited say.
func (w *RSSWatch) Stop() (mb float64, ok bool) {
	var kb int64
	var err error
	if w.sampled != nil {
		close(w.stopSampler)
		s := <-w.sampled
		kb, err = s.kb, s.err
	} else {
		kb, err = sumStatus(w.pids, "VmHWM:")
	}
	if err != nil || kb <= 0 {
		return 0, false
	}
	return float64(kb) / 1024, true
}

// sumStatus adds up the field (a size in kB) of the processes' status files.
func sumStatus(pids []int, field string) (int64, error) {
	var sum int64
	for _, pid := range pids {
		kb, err := statusKB(pid, field)
		if err != nil {
			return 0, err
		}
		sum += kb
	}
	return sum, nil
}

// statusKB reads one "Name:   1234 kB" line of /proc/PID/status.
func statusKB(pid int, field string) (int64, error) {
	path := procFile(pid, "status")
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		v, ok := bytes.CutPrefix(line, []byte(field))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))
		kb, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %s %q: %w", path, field, v, err)
		}
		return kb, nil
	}
	return 0, fmt.Errorf("%s: no %s line", path, field)
}

func procFile(pid int, name string) string {
	if pid == 0 {
		return "/proc/self/" + name
	}
	return fmt.Sprintf("/proc/%d/%s", pid, name)
}
