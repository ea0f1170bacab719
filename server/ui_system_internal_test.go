package server

import (
	"testing"
	"time"
)

// TestIngestSampler: the rate is over the samples of the last minute, taken
// at most every ingestSampleEvery, so the samples kept stay few however
// often the page asks.
func TestIngestSampler(t *testing.T) {
	var g ingestSampler
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	if r, over := g.rate(t0, 100); r != 0 || over != 0 {
		t.Errorf("first sample: %v over %v; want measuring", r, over)
	}
	if r, over := g.rate(t0.Add(10*time.Second), 200); r != 10 || over != 10*time.Second {
		t.Errorf("after 10s and 100 events: %v/s over %v", r, over)
	}
	size := uint64(200)
	for i := range 10000 { // ten a second for 1,000 s
		size += 5
		g.rate(t0.Add(10*time.Second+time.Duration(i+1)*100*time.Millisecond), size)
	}
	if n, most := len(g.samples), int(ingestWindow/ingestSampleEvery)+2; n > most {
		t.Errorf("%d samples kept; want at most %d", n, most)
	}
	now := t0.Add(10*time.Second + 1000*time.Second)
	r, over := g.rate(now, size)
	if over > ingestWindow || over < ingestWindow-ingestSampleEvery || r < 49 || r > 51 {
		t.Errorf("steady 50 events/s: %v/s over %v", r, over)
	}
	if r, over := g.rate(now.Add(time.Hour), size); r != 0 || over != 0 {
		t.Errorf("an hour later, the old samples dropped: %v/s over %v; want measuring again", r, over)
	}
}
