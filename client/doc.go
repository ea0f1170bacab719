// Package client is the Go client of a Trail server: the same Appender as
// the embedded engine (trail.Open), over HTTP, plus the read endpoints.
//
//	c, err := client.New("https://trail.example:7070", client.WithToken(tok))
//	p := c.Log(ev)          // never waits for the network
//	r, err := p.Wait(ctx)   // the receipt once the server has stored it durably
//	err = c.Close(ctx)      // every event handed over is stored or told why not
//
// # Guarantees
//
//   - A Receipt means the server stored the event durably; it is the
//     server's receipt, unchanged.
//   - Exactly once across retries: before an event without an id is first
//     sent, the client gives it a time-ordered random UUIDv8 (never a
//     UUIDv7, the form of ids the server assigns; time order keeps the
//     server's id index cheap). Every resend carries the same id, and the
//     server answers a stored id with the first receipt, so a batch retried
//     after a lost answer is not stored twice.
//   - Per-stream order: events one Client logs to one stream are stored in
//     the order they were logged. Each stream hashes to one of the lanes
//     (WithLanes); a lane has at most one request in flight and retries a
//     batch until it is resolved before it sends anything logged after it.
//   - Bounded memory: at most WithMaxBuffered events are held, queued or in
//     flight. When that many are held, Log fails at once with an error
//     matching trail.ErrBufferFull; Enqueue and Append wait for room under
//     their context. Nothing is dropped silently: every Pending is resolved.
//   - A bad event never takes others down. Log validates each event
//     (Event.Validate) and fails an invalid one at once with its
//     *trail.ValidationError; it is never sent. If the server still refuses
//     one line of a batch (400, 409, or 403 for a stream the token may not
//     append to, naming the line), only that event fails, with an *Error
//     carrying the server's detail (409 matches trail.ErrIDConflict), and
//     the rest of the batch is sent again.
//
// # Batching
//
// Log appends the event to its lane's queue (no network, no goroutine per
// event). A lane sends as soon as it is idle and has events, without added
// delay. While its request is in flight, new events accumulate and go as
// the next batch when it returns, at most WithBatchSize events and less
// than 16 MiB per request. Linger applies only right after a request
// returns: if fewer events wait than that request carried, the lane waits
// up to WithLinger (default 2ms) for that many, which lets closed-loop
// producers woken by the receipts join the next batch instead of trickling
// out one request per event. An idle lane never lingers, and the wait ends
// as soon as the count is reached: with 64 producers, each waiting for its
// receipt, lanes lingered 0.2ms on average and 3% of lingers ran to 2ms.
// Measured end to end on loopback (BenchmarkProducers, fsync on every
// batch, 2 vCPUs shared with other work, medians of 10 interleaved runs),
// 64 such producers stored 11,900 events/s with the 2ms default and 8,600
// without lingering; one producer logging without waiting was the same
// either way.
//
// Lanes (WithLanes, default 1) bound the batches in flight. Measured on
// loopback against a server on the same 2 cores (fsync on every batch, three
// interleaved runs each): 64 producers each waiting for their receipts
// stored 45-52k events/s with 1 lane and 22-26k with 4, because the events
// of one round trip are split over four requests and the fsyncs they wait
// for; one caller logging 200,000 events without waiting stored 82-94k
// events/s with 1 lane and 118-137k with 4, which overlap parsing on the
// server with the round trips. Choose more lanes for a backlog or a slow
// network.
//
// # Failures
//
// Network errors and 502, 503, 504 and 429 answers are retried with the
// same ids, with exponential backoff (from 10ms to 1s, with jitter) or the
// server's Retry-After, until WithRetryTimeout has passed since the batch
// was first sent; then its events fail with an error wrapping the last
// failure. A 413 splits the batch in halves, sent one after the other; a
// single event too large fails with an *Error matching trail.ErrTooLarge.
// 401, a 403 naming no line, and other refusals fail the whole batch with
// the *Error, not retried. Close waits for all of this; when its context ends first, it
// stops retrying and fails what is left with an error matching
// trail.ErrClosed.
//
// Pending.Duplicate is always false for events sent through the client:
// the batch endpoint answers a resent id with the first receipt without
// saying it was stored earlier, so the client cannot tell a retry that
// found its event already stored from a first store.
//
// # Spool: through an outage and a restart
//
// Held in memory, events die with the application and fail after
// WithRetryTimeout while the server is down. WithSpool(dir, maxBytes)
// keeps them on disk instead until the server acknowledges them:
//
//	c, err := client.New(url, client.WithToken(tok), client.WithSpool("/var/lib/app/trail-spool", 1<<30))
//
// Log then assigns the event its id and time (when empty), appends it to
// the spool and returns; a goroutine writes and fsyncs what was logged in
// batches, and a sender posts the spooled events in the order they were
// logged, retrying without end while the server is unreachable or
// refuses the batch as a whole. Pending.Wait returns the server's receipt
// (with WithSpoolAck, as soon as the spool has fsynced the event). A full
// spool fails Log with ErrSpoolFull; nothing spooled is ever dropped. An
// application started again on the same directory resends what was left,
// exactly once, since each event is resent with its id, byte for byte. An
// event the server refuses alone is kept in rejected.ndjson in the spool.
// Stats reports the events spooled, their age, and what was sent. The
// spool's files and its crash behaviour are described on WithSpool.
//
// # Reads
//
// Get, Query, Stream, Checkpoint, InclusionProof, ConsistencyProof and Tail
// are one call per read endpoint. Stored events come back as the exact
// bytes the server hashed into its Merkle tree, so trail.LeafHash of them
// can be checked against a proof. Refusals are *Error (a 404 matches
// trail.ErrNotFound). BreakGlass marks a context's reads as emergency reads.
package client
