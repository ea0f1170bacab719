package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/trailhq/trail"
)

// TestReviewListUnreviewedFirst: after marks made through POST /v1/reviews
// (one record twice), reviewedIndexes counts the marks of each record and
// unreviewedFirst puts the unreviewed ones ahead, order kept; with a limit
// below the number of marks it reads only the newest and says it is
// incomplete.
func TestReviewListUnreviewedFirst(t *testing.T) {
	l, err := trail.Open(t.TempDir(), trail.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	s, err := New(l, Config{AdminToken: "trail_test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var bgs []trail.Event
	for i := range 4 {
		bgs = append(bgs, trail.Event{Stream: BreakGlassStream, Type: "audit-log.read", Action: "R",
			Actor: trail.Actor{ID: fmt.Sprintf("dr-%d", i)}, Purpose: "emergency"})
	}
	rcs, err := l.AppendReserved(ctx, bgs)
	if err != nil {
		t.Fatal(err)
	}
	review := func(i uint64) {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/v1/reviews", strings.NewReader(fmt.Sprintf(`{"index":%d,"note":"ok"}`, i)))
		req.Header.Set("Authorization", "Bearer trail_test")
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		if w.Code != http.StatusCreated {
			t.Fatalf("review of %d: %d %s", i, w.Code, w.Body)
		}
	}
	review(rcs[1].Index)
	review(rcs[3].Index)
	review(rcs[1].Index) // the newest mark

	got, complete, err := s.reviewedIndexes(ctx, maxReviewScan)
	if err != nil || !complete {
		t.Fatalf("reviewedIndexes: %v, complete %v", err, complete)
	}
	if want := map[uint64]int{rcs[1].Index: 2, rcs[3].Index: 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("reviewed %v, want %v", got, want)
	}
	var recs [][]byte
	for _, rc := range rcs {
		rec, err := l.Read(rc.Index)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	var order []uint64
	for _, rec := range unreviewedFirst(recs, got) {
		i, _ := trail.RecordIndex(rec)
		order = append(order, i)
	}
	if want := []uint64{rcs[0].Index, rcs[2].Index, rcs[1].Index, rcs[3].Index}; !slices.Equal(order, want) {
		t.Errorf("review list order %v, want %v", order, want)
	}

	got, complete, err = s.reviewedIndexes(ctx, 1)
	if err != nil || complete {
		t.Fatalf("reviewedIndexes with limit 1: %v, complete %v; want incomplete", err, complete)
	}
	if want := map[uint64]int{rcs[1].Index: 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("with limit 1, reviewed %v, want the newest mark only %v", got, want)
	}
}
