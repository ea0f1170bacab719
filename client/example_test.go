package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/client"
)

// An application logs without waiting, and waits for the receipts it
// needs. It is compiled, not run: it needs a running server.
func Example() {
	ctx := context.Background()
	c, err := client.New("http://127.0.0.1:7070", client.WithToken(os.Getenv("TRAIL_TOKEN")))
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil { // every event is stored or told why not
			log.Print(err)
		}
	}()

	// Fire and forget: the client batches, retries and keeps order.
	c.Log(trail.Event{
		Stream: "patient/12345", Type: "patient-record.read", Action: "R",
		Actor: trail.Actor{ID: "dr-house", Role: "physician"}, Patient: "12345",
	})

	// Or wait for the receipt: the event is then stored durably.
	r, err := c.Append(ctx, trail.Event{
		Stream: "auth/login", Type: "user.login", Action: "E",
		Actor: trail.Actor{ID: "dr-house", Address: "10.1.2.3"},
	})
	switch {
	case errors.Is(err, trail.ErrBufferFull):
		log.Print("too many events waiting for the server")
	case err != nil:
		log.Print(err)
	default:
		fmt.Println("stored at index", r.Index, "leaf", r.LeafHash)
	}
}

// Reading a stream page by page; each event is the exact stored bytes.
func ExampleClient_Query() {
	ctx := context.Background()
	c, err := client.New("http://127.0.0.1:7070", client.WithToken(os.Getenv("TRAIL_TOKEN")))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	q := client.Query{Stream: "patient/12345", Limit: 100}
	for {
		page, err := c.Query(ctx, q)
		if err != nil {
			log.Fatal(err)
		}
		for _, ev := range page.Events {
			fmt.Printf("%s %s\n", trail.LeafHash(ev), ev)
		}
		if page.Next == "" {
			break
		}
		q.After = page.Next
	}
}

// An application that must never wait for the audit server nor lose an
// event spools to a local directory. It is compiled, not run: it needs a
// running server.
func Example_spool() {
	c, err := client.New("https://trail.example:7070",
		client.WithToken(os.Getenv("TRAIL_TOKEN")),
		client.WithSpool("/var/lib/ward-app/trail-spool", 1<<30), // up to 1 GiB while the server is away
		client.WithSpoolAck(),                                    // Wait returns once the event is fsynced locally
	)
	if err != nil {
		log.Fatal(err) // for example: the spool is in use by another process
	}
	defer func() {
		// What the server has not taken yet stays in the spool for the next
		// start: a short wait is enough.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Close(ctx)
	}()

	p := c.Log(trail.Event{
		Stream: "patient/12345", Type: "patient-record.read", Action: "R",
		Actor: trail.Actor{ID: "dr-house", Role: "physician"}, Patient: "12345",
	})
	if _, err := p.Wait(context.Background()); errors.Is(err, client.ErrSpoolFull) {
		log.Print("the audit spool is full: the server has been away too long")
	}

	// For monitoring: how much waits for the server, and for how long.
	st := c.Stats()
	log.Printf("trail: %d events (%d bytes) spooled, oldest %v, last error %q",
		st.Spooled, st.SpooledBytes, st.OldestAge, st.LastError)
}
