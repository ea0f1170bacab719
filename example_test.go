package trail_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/trailhq/trail"
)

func Example() {
	dir, _ := os.MkdirTemp("", "trail-example-")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	l, err := trail.Open(dir, trail.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	ev := trail.Event{
		Stream:  "patient/12345",
		Type:    "patient-record.read",
		Action:  "R",
		Actor:   trail.Actor{ID: "dr-house", Role: "physician", Address: "10.0.0.7"},
		Patient: "12345",
	}
	p := l.Log(ev) // returns at once
	r, err := p.Wait(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("index", r.Index, "stream_seq", r.StreamSeq)

	r2, err := l.Append(ctx, ev) // Log + Wait
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("index", r2.Index, "stream_seq", r2.StreamSeq)

	// The stored bytes are what the Merkle tree hashed.
	rec, _ := l.Read(r2.Index)
	fmt.Println(trail.LeafHash(rec) == r2.LeafHash)

	// Sending the same id again returns the first receipt.
	ev.ID = r.ID
	again, _ := l.Append(ctx, ev)
	fmt.Println(again == r)

	if err := l.Close(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// index 0 stream_seq 1
	// index 1 stream_seq 2
	// true
	// true
}
