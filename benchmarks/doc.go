// Package benchmarks measures Trail beside PostgreSQL 15 on the same
// workload, the way zap's benchmarks compare peers: the events of "trail
// bench" (internal/bench) go to Trail over loopback HTTP through the Go
// client, and to a throwaway PostgreSQL cluster that the benchmark starts from
// the installed binaries and removes afterwards.
//
// Both sides are durable: Trail acknowledges after fsync (--sync=always), and
// PostgreSQL runs with fsync, synchronous_commit and full_page_writes on, so a
// commit returns only after its WAL is flushed. PostgreSQL does less per event
// than Trail (no per-stream sequence, no hash chain, no Merkle tree), so the
// comparison favours it.
//
// Modes, each from an empty store:
//   - p=64: 64 producers, each waiting for its acknowledgement before sending
//     the next event; PostgreSQL gets one single-row INSERT per event
//     (autocommit) over a pool of 64 connections.
//   - batched: one caller hands over every event without waiting, then waits
//     for all; Trail's client batches as it does, PostgreSQL gets one COPY per
//     1000 events over a few connections.
//
// A benchmark that cannot start PostgreSQL fails with the reason (no binaries,
// no unprivileged user to run them as when running as root); nothing is left
// behind on success, error or interrupt, except after SIGKILL, when the
// cluster's postmaster is told to stop by the parent-death signal and its
// temporary directory remains.
package benchmarks
