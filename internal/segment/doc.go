// Package segment stores the log: numbered segment files of framed records.
//
// A frame is an 8-byte header followed by the record bytes:
//
//	uint32 LE  length | more<<31   (more: the next record belongs to the same atomic group)
//	uint32 LE  CRC-32C of the first four header bytes and the record
//	[length]byte record
//
// A zero header marks the end of the written data. Records are numbered from
// 0 across all segments; a segment file is named after the number of its first
// record (00000000000000000000.seg) and is sealed, with an offset index beside
// it (.idx), when it passes the rotation size. Segments are only ever
// appended to; a sealed segment is never written again.
//
// Guarantees. Append writes a batch with one write call; Sync makes it durable
// (fdatasync). A batch is made of groups and is atomic per group: after a crash
// Open keeps a group only if all its records are intact, so a caller that puts
// a user's batch in one group gets all-or-nothing across crashes.
//
// Resources. The active segment's file is open while the Log is; a sealed
// segment's files (the segment and its index) are opened on first read and
// kept in an LRU of Options.MaxOpenSealed segments, so a Log holds at most
// 2*MaxOpenSealed+1 descriptors between reads, whatever the log's length (a
// read in flight keeps the files of a segment evicted under it open until it
// returns). Open stats each sealed segment's index but leaves it closed.
// Scan reads a segment in 1 MiB chunks (more only for a larger record)
// from the record it starts at, found through the index.
//
// Failure. Open truncates a torn tail (the tail that fails its CRC, is
// incomplete, or ends inside a group) by overwriting it with zeros and syncing,
// but only past the durable watermark the caller gives: damage below it is
// corruption, reported as an error, never silently cut away. Write or sync
// errors are returned to the caller, which must stop using the Log (a failed
// fsync leaves the page cache in an unknown state; it is never retried).
package segment
