// Package trail is Trail's engine: an append-only, tamper-evident audit log
// that an application embeds (trail.Open) and the Trail server runs.
//
// An event handed to Log is validated, given a global index (its leaf in an
// RFC 6962 Merkle tree), a gap-free stream_seq within its stream, the leaf
// hash of the previous event of its stream (prev), a recorded time and a
// salt of 128 random bits (so that the leaf hashes proofs make public
// confirm no guess of an event's content), and written by one sequencer
// goroutine with group commit.
//
// Where things are:
//
//   - package event: the event schema and its wire format (parse, validate,
//     encode the stored record, read it back);
//   - this package: the API (Log, Pending, Receipt, Query, errors) and the
//     write pipeline, one stage per file, wired in open.go: queue.go (a
//     bounded queue) → sequencer.go (ids, index, stream_seq, prev, recorded,
//     leaf hashes; one write per batch) → syncer.go (durability, then the
//     receipts) → indexer.go (the indexes, off the receipt path) and
//     checkpointer.go (signed checkpoints); watermark.go holds how far the
//     log is durable and indexed;
//   - internal/store: the Store the pipeline writes through and reads from
//     (records, tree hashes, checkpoints, indexes), and internal/store/files,
//     the data directory on local disk;
//   - package verify and cmd/trail verify: the offline checker.
//
// Validation refuses, listing every problem (InvalidEventError): fields
// outside the v1 schema or assigned by the server, ids other than 1-64
// bytes of [A-Za-z0-9.-], strings anywhere that are not valid UTF-8 or
// hold NUL or a lone surrogate, and events over 64 KiB as sent.
//
// A data directory is stamped with its format (FORMAT, DataFormat); Open
// and Verify refuse a directory in another format with a FormatError.
//
// Guarantees:
//
//   - A Receipt is given only after the event is fdatasync'd (Config.Sync
//     "always", the default); a crash at any moment loses at most events
//     that were never acknowledged. An atomic batch (LogBatch, AppendBatch)
//     is wholly stored or wholly absent, also across crashes.
//   - Events one caller logs to one stream are stored in the order it logged
//     them.
//   - An id is unique in the log: sending it again returns the first
//     receipt (Pending.Duplicate reports it), with other content
//     ErrIDConflict; also after a restart.
//   - Log never blocks on the disk. When the bounded queue is full it fails
//     with ErrBufferFull; Enqueue and Append wait for room under their
//     context. Nothing is dropped silently.
//   - Signed checkpoints (C2SP tlog-checkpoint, Ed25519) commit to the tree
//     every Config.CheckpointInterval and on Close, and only over records
//     and tree hashes on disk (with Sync "none" too: a power loss never
//     leaves a checkpoint the log cannot meet); proofs are served from
//     hashes kept on disk; Verify rechecks everything offline, against a
//     trusted verifier key and checkpoint when given.
//   - Reads (Read, Query) never return bytes whose leaf hash differs from
//     the tree's leaf at their index: such a record, altered on disk, is an
//     *IntegrityError (ErrIntegrity) naming it, while the rest of the log is
//     read and appends go on. Open refuses a log whose records past the
//     latest checkpoint differ from the leaves the tree wrote for them.
//   - Query sees every event acknowledged before it was called, and paging
//     with its cursor returns each matching event exactly once, in order,
//     while appends continue. Its indexes (posting lists by stream, patient,
//     actor, type, action and outcome; time by binary search, as recorded
//     times never decrease along the log) are derived from the log, kept
//     off the acknowledgement path, and replayed or rebuilt from the log
//     after a crash or when missing.
//   - A Query limited to a Scope (a caller's read grants) finds the events
//     of those streams through the index, so its cost follows what the
//     caller may read, not the size of the log; it never returns an event
//     outside the Scope. A query stops with its context's error when the
//     context ends.
//   - Streams under trail/ take only Trail's own events (AppendReserved),
//     such as the server's record of every read.
//
// Failure: after a failed write or fsync (a full disk, an I/O error) the
// engine stops acknowledging, resolves every pending event with an error
// matching ErrFailed, never calls fsync again on the failed file, and Err
// says why. Opening the directory again recovers: a torn tail is cut, the
// tree and the index store are brought up to the end of the log from the
// latest signed checkpoint, never by rescanning the whole log.
package trail
