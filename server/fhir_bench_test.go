package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server"
)

// BenchmarkFHIRTransaction posts transaction Bundles of 1,000 AuditEvents
// (about 700 bytes each, 100 patients) over HTTP on loopback, four at a
// time, to a server with the default engine (fsync before each answer),
// and reports events/s.
//
//	go test -run '^$' -bench FHIRTransaction -benchtime 40x -count 3 ./server
func BenchmarkFHIRTransaction(b *testing.B) {
	const perBundle = 1000
	l, err := trail.Open(b.TempDir(), trail.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close(context.Background())
	srv, err := server.New(l, server.Config{AdminToken: "bench-token"})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	bundles := make([][]byte, 8)
	for i := range bundles {
		var es []any
		for j := range perBundle {
			r := newResource(fmt.Sprintf("p%d", (i*perBundle+j)%100), fmt.Sprintf("user%d", j%50), "2026-01-05T10:00:00Z")
			r.addEntity(map[string]any{"what": map[string]any{"reference": fmt.Sprintf("Observation/o%d", j)},
				"type": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"},
				"role": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "4"}})
			es = append(es, "POST", "AuditEvent", r.json(b))
		}
		bundles[i] = bundleOf(b, "transaction", es...)
	}
	client := ts.Client()
	b.SetParallelism(2)
	b.ResetTimer()
	start := time.Now()
	n := 0
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			req, _ := http.NewRequest("POST", ts.URL+"/fhir", bytes.NewReader(bundles[i%len(bundles)]))
			req.Header.Set("Authorization", "Bearer bench-token")
			req.Header.Set("Content-Type", "application/fhir+json")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
			i++
		}
	})
	n = b.N * perBundle
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(float64(len(bundles[0]))/perBundle, "bytes/event")
}
