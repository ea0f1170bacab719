// Package backup copies a Trail data directory up to a signed checkpoint,
// checks such a copy, and restores it as a new data directory.
//
// A backup holds what a data directory needs to be served again with the
// same log: FORMAT, the verifier key, the segment files cut to the records
// the chosen checkpoint covers, the signed checkpoints up to and including
// it (and it alone as "checkpoint"), the principals (tokens.json), and
// unless left out the signing key and admin token; and, written last, a
// manifest (BACKUP) naming every file with its size and SHA-256 and the
// checkpoint. It holds no derived file: the Merkle tree, the segments'
// offset indexes and the index store are rebuilt from the records when the
// restored directory is opened (Restore opens it once, so "trail serve"
// starts at once).
//
// Consistency. Snapshot reads a directory that a server may be appending
// to and checkpointing meanwhile, without stopping it: the records a
// signed checkpoint covers are durable and never written again, segments
// and the checkpoints file only grow, so prefixes read after the
// checkpoint was chosen are the bytes it signed. Files made or grown
// during the copy are cut or left out; the keys, FORMAT and the tokens file
// are replaced atomically by the server, never written in place.
//
// Failure. A backup is written into a temporary directory beside its
// target, checked, and only then given its manifest and renamed into place
// (Dir.Check, Dir.Commit); a backup stopped before that leaves at most a
// temporary directory without a manifest, which Check refuses (stopped
// between the manifest and the rename, a whole, checked backup under a
// temporary name). Check refuses a copy
// whose files differ from its manifest, whose records do not verify against
// its signed checkpoints (package verify), or that holds more or fewer
// records than its checkpoint covers. Restore copies into a temporary
// directory too, checks what it copied, and renames it into place.
package backup
