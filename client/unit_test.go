package client

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trailhq/trail"
)

var uuidV8 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestIDsAreTimeOrderedUUIDv8: client ids are UUIDv8, unique, ordered by
// the millisecond they were made in (the index store's cheap case), valid
// event ids, and never in the assigned UUIDv7 form.
func TestIDsAreTimeOrderedUUIDv8(t *testing.T) {
	ms := int64(1_780_000_000_000)
	s := idSource{now: func() time.Time { return time.UnixMilli(ms) }}
	seen := map[string]bool{}
	prev := ""
	for i := 0; i < 3*idBatch+7; i++ {
		if i%10 == 0 {
			ms++
		}
		id := s.next()
		if !uuidV8.MatchString(id) {
			t.Fatalf("id %q is not a lower-case UUIDv8", id)
		}
		if seen[id] {
			t.Fatalf("id %q repeated", id)
		}
		seen[id] = true
		if i%10 == 0 && id <= prev {
			t.Fatalf("id %q made a millisecond later sorts before %q", id, prev)
		}
		prev = id
		if got := fmt.Sprintf("%012x", ms); id[:8]+id[9:13] != got {
			t.Fatalf("id %q does not start with the time %s", id, got)
		}
	}
	ev := trail.Event{ID: s.next(), Stream: "a", Type: "t", Action: "R", Actor: trail.Actor{ID: "x"}}
	if err := ev.Validate(); err != nil {
		t.Fatalf("a client id does not validate: %v", err)
	}
}

func TestFormatV8SetsVersionAndVariant(t *testing.T) {
	got := formatV8([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	if want := "ffffffff-ffff-8fff-bfff-ffffffffffff"; got != want {
		t.Errorf("formatV8(ff…) = %s, want %s", got, want)
	}
	got = formatV8(make([]byte, 16))
	if want := "00000000-0000-8000-8000-000000000000"; got != want {
		t.Errorf("formatV8(00…) = %s, want %s", got, want)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"3", 3 * time.Second},
		{" 2 ", 2 * time.Second},
		{"-1", 0},
		{"soon", 0},
		{now.Add(5 * time.Second).Format(http.TimeFormat), 5 * time.Second},
		{now.Add(-5 * time.Second).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := retryAfter(tt.in, now); got != tt.want {
				t.Errorf("retryAfter(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestErrorMatchesSentinels(t *testing.T) {
	tests := []struct {
		status int
		target error
		want   bool
	}{
		{409, trail.ErrIDConflict, true},
		{404, trail.ErrNotFound, true},
		{413, trail.ErrTooLarge, true},
		{400, trail.ErrIDConflict, false},
		{409, trail.ErrNotFound, false},
		{503, trail.ErrBufferFull, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d-%v", tt.status, tt.target), func(t *testing.T) {
			err := fmt.Errorf("wrapped: %w", &Error{Status: tt.status})
			if got := errors.Is(err, tt.target); got != tt.want {
				t.Errorf("errors.Is(%d, %v) = %v, want %v", tt.status, tt.target, got, tt.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		e    *Error
		want action
	}{
		{"transport", nil, actRetry},
		{"502", &Error{Status: 502}, actRetry},
		{"503", &Error{Status: 503, RetryAfter: time.Second}, actRetry},
		{"504", &Error{Status: 504}, actRetry},
		{"429", &Error{Status: 429}, actRetry},
		{"400 line", &Error{Status: 400, Line: 3}, actLine},
		{"400 no line", &Error{Status: 400}, actFail},
		{"409 line", &Error{Status: 409, Line: 1}, actLine},
		{"403 line", &Error{Status: 403, Line: 2}, actLine},
		{"403", &Error{Status: 403}, actFail},
		{"401", &Error{Status: 401}, actFail},
		{"413", &Error{Status: 413}, actSplit},
		{"413 line", &Error{Status: 413, Line: 4}, actLine},
		{"500", &Error{Status: 500}, actFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.e); got != tt.want {
				t.Errorf("classify(%+v) = %v, want %v", tt.e, got, tt.want)
			}
		})
	}
}

func TestBackoffGrowsWithJitterToOneSecond(t *testing.T) {
	var b backoff
	prevStep := time.Duration(0)
	for i := 0; i < 20; i++ {
		w := b.next(0)
		if b.d < prevStep || b.d > backoffMax {
			t.Fatalf("step %d: %v after %v", i, b.d, prevStep)
		}
		if w < b.d/2 || w > b.d {
			t.Fatalf("wait %v outside [%v, %v]", w, b.d/2, b.d)
		}
		prevStep = b.d
	}
	if b.d != backoffMax {
		t.Errorf("step after 20 waits = %v, want %v", b.d, backoffMax)
	}
	if w := b.next(5 * time.Second); w != 5*time.Second {
		t.Errorf("with Retry-After 5s: wait %v", w)
	}
}

func TestLaneOfSpreadsStreams(t *testing.T) {
	counts := make([]int, 4)
	for i := 0; i < 1000; i++ {
		s := fmt.Sprintf("patient/%d", i)
		l := laneOf(s, 4)
		if l != laneOf(s, 4) {
			t.Fatal("laneOf is not stable")
		}
		counts[l]++
	}
	for i, n := range counts {
		if n < 150 {
			t.Errorf("lane %d got %d of 1000 streams: %v", i, n, counts)
		}
	}
}

func TestReadSSE(t *testing.T) {
	in := ": keep-alive\n\n" +
		"id: 7\ndata: {\"a\":1}\n\n" +
		"id: 9\r\ndata: {\"b\":2}\r\n\r\n" +
		"event: message\nid: 12\ndata:{\"c\":3}\n\n" +
		"id: 13\n\n" // no data: skipped
	type got struct {
		Index uint64
		Rec   string
	}
	var all []got
	err := readSSE(strings.NewReader(in), func(i uint64, rec []byte) error {
		all = append(all, got{i, string(rec)})
		return nil
	})
	if !errors.Is(err, errTailEnded) {
		t.Errorf("end of stream: %v, want errTailEnded", err)
	}
	want := []got{{7, `{"a":1}`}, {9, `{"b":2}`}, {12, `{"c":3}`}}
	if d := cmp.Diff(want, all); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}

	stop := errors.New("stop")
	err = readSSE(strings.NewReader(in), func(uint64, []byte) error { return stop })
	if err != stop {
		t.Errorf("fn's error: got %v", err)
	}
	err = readSSE(strings.NewReader("id: x\ndata: {}\n\n"), func(uint64, []byte) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "not an index") {
		t.Errorf("bad id: got %v", err)
	}
}

func TestNewChecksOptions(t *testing.T) {
	tests := []struct {
		name string
		url  string
		opts []Option
		want string // in the error; "" for success
	}{
		{"defaults", "http://127.0.0.1:7070/", nil, ""},
		{"no scheme", "127.0.0.1:7070", nil, "server URL"},
		{"ftp", "ftp://host", nil, "want http"},
		{"query", "http://host/?a=b", nil, "query"},
		{"batch 0", "http://h", []Option{WithBatchSize(0)}, "batch size"},
		{"batch too big", "http://h", []Option{WithBatchSize(MaxBatchSize + 1)}, "batch size"},
		{"lanes", "http://h", []Option{WithLanes(0)}, "lanes"},
		{"buffer", "http://h", []Option{WithMaxBuffered(0)}, "max buffered"},
		{"linger", "http://h", []Option{WithLinger(-1)}, "linger"},
		{"retry", "http://h", []Option{WithRetryTimeout(0)}, "retry timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.url, tt.opts...)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.base != strings.TrimRight(tt.url, "/") {
					t.Errorf("base %q", c.base)
				}
				c.Close(t.Context())
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error about %q", err, tt.want)
			}
		})
	}
}

func TestLogAfterCloseFails(t *testing.T) {
	c, err := New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	ev := trail.Event{Stream: "s", Type: "t", Action: "R", Actor: trail.Actor{ID: "a"}}
	if _, err := c.Log(ev).Wait(t.Context()); !errors.Is(err, trail.ErrClosed) {
		t.Errorf("Log after Close: %v", err)
	}
	if _, err := c.Enqueue(t.Context(), ev); !errors.Is(err, trail.ErrClosed) {
		t.Errorf("Enqueue after Close: %v", err)
	}
	if err := c.Close(t.Context()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
