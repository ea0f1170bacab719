// Package event is Trail's event schema (v1) and its wire format: the Event a
// client sends, how it is decoded from JSON (Parse: unknown and
// server-assigned members refused, strings valid UTF-8, limits enforced) and
// validated (Validate: every problem listed, each naming its field), how it
// is encoded as the stored record the Merkle tree hashes (Encode,
// AppendStored), and how a stored record is read back (ParseStored, and
// ParseHeader for the server's fields alone).
//
// The stored layout is fixed, so that recovery, queries and the offline
// verifier read the server's fields without a JSON decoder:
//
//	{"id":"…","index":N,"stream":"…","stream_seq":N,"recorded":"…","salt":"…",<the client's fields>[,"original":{…}][,"prev":"…"]}
//
// The package depends on nothing of the engine; the engine (package trail),
// the server, the offline verifier and the client all use it. Package trail
// names its types (trail.Event is event.Event).
package event
