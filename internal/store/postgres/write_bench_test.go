package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/pgtest"
	"github.com/trailhq/trail/internal/store/postgres"
)

// BenchmarkAppendBatch appends atomic batches of n events one after the
// other, each one batch of the store, with the rows inserted from arrays
// (unnest) or copied (COPY).
func BenchmarkAppendBatch(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{64, 1024, 4096} {
		for _, how := range []string{"unnest", "copy"} {
			b.Run(fmt.Sprintf("%s/n=%d", how, n), func(b *testing.B) {
				if how == "copy" {
					defer postgres.SetCopyAbove(0)()
				} else {
					defer postgres.SetCopyAbove(1 << 30)()
				}
				dir := b.TempDir()
				url, err := pgtest.DatabaseFor(ctx, dir)
				if err != nil {
					b.Fatal(err)
				}
				l := openLog(b, url, dir)
				defer l.Close(ctx)
				evs := make([]trail.Event, n)
				for i := range evs {
					evs[i] = trail.Event{Stream: fmt.Sprintf("patient/%d", i%100), Type: "patient-record.read",
						Action: "R", Actor: trail.Actor{ID: "dr-1"}, Patient: fmt.Sprint(i % 100),
						Details: []byte(`{"note":"` + fmt.Sprintf("%0200d", i) + `"}`)}
				}
				b.ResetTimer()
				for b.Loop() {
					if _, err := l.AppendBatch(ctx, evs); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}
