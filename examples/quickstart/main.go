// Quickstart logs one audit event: through a running server when
// TRAIL_SERVER is set (with TRAIL_TOKEN), else into ./trail-data with the
// embedded engine. Run it with: go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/client"
)

func main() {
	ctx := context.Background()
	var a trail.Appender // the engine and the client both are one
	var err error
	if url := os.Getenv("TRAIL_SERVER"); url != "" {
		a, err = client.New(url, client.WithToken(os.Getenv("TRAIL_TOKEN"))) // remote, batching
	} else {
		a, err = trail.Open("./trail-data", trail.DefaultConfig()) // embedded (not while a server holds it)
	}
	if err != nil {
		log.Fatal(err)
	}
	p := a.Log(trail.Event{ // returns at once; never waits for the disk or the network
		Stream: "patient/12345", Type: "patient-record.read", Action: "R",
		Actor:   trail.Actor{ID: "dr-house", Role: "physician", Address: "10.0.0.7"},
		Patient: "12345",
	})
	r, err := p.Wait(ctx) // the receipt once durable: id, index, stream_seq, recorded, leaf_hash
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("stored: index %d, id %s, stream_seq %d\n", r.Index, r.ID, r.StreamSeq)
	// a.Append(ctx, ev) is Log and Wait in one call.
	if err := a.Close(ctx); err != nil { // drains: every event handed over is stored or told why not
		log.Fatal(err)
	}
}
