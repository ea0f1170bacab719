// Package server serves a Trail engine over HTTP: the v1 API of the contract
// (append, batch, get, query, stream heads, checkpoint, proofs, live tail),
// health and readiness, and Prometheus metrics. GET /v1/openapi.json serves
// the OpenAPI 3.1 description of all of it (openapi.json, embedded); the
// package's end-to-end tests validate every request and answer they make
// against it.
//
// Access. Every endpoint but /healthz, /readyz, /metrics, the checkpoint,
// consistency proofs and the OpenAPI description needs a principal: a bearer token (TokenAuth: the
// admin token and DIR/tokens.json, reloaded when it changes) or a verified
// TLS client certificate. Appends need an append grant for the stream;
// reads return only streams the principal may read (a query by patient or
// actor leaves the others out; naming a forbidden stream is 403). Every
// read, allowed or refused with 403, is appended to trail/access before it
// is answered (a read whose record cannot be stored is refused: 503), and a
// break-glass read (purpose=emergency with a reason, by a principal allowed
// to) also to trail/break-glass. As IHE BALP does, a read that returned
// events of patients it did not name appends one more record per such
// patient, so every patient finds every read of their events in
// trail/access; reads with purpose=system (the admin's backups and full
// verification) append one record that names no patient. A live tail is
// recorded when it starts, at most once a second while it delivers events,
// and when it ends.
//
// Limits. Failed authentication is limited per client address (IPv6 per
// /64; behind Config.TrustedProxies, the rightmost untrusted
// X-Forwarded-For address): past the burst, requests without valid
// credentials get 429, while valid credentials from the same address are
// never refused. Reads are limited per principal (429 with Retry-After,
// no record) by the read records they append: a read takes one, and its
// further records (one per other patient, a tail's later records) are
// charged after it, so a principal's next reads wait until they are paid
// for and read records cannot grow faster than the rate. Live tails are
// limited per principal, and request bodies in time; a
// principal without any append grant is refused before its body is read.
//
// Guarantees. A 201 or 200 answer to an append is given only after the
// engine's receipt, so only after the events are fsynced. A batch is handed
// to the engine whole or not at all: every line is parsed and validated before
// any is queued, and the engine stores it atomically, so a 4xx or 5xx answer
// means nothing of the request was stored (a timeout or dropped connection
// may still have stored it; resending the same ids returns the first
// receipts). Stored events are answered as the exact bytes the Merkle tree
// hashed.
//
// Backup. GET /v1/admin/backup (admin only; anyone else gets 403, recorded)
// streams a tar archive of a consistent copy of the data directory up to
// the latest signed checkpoint, taken while appends go on, without the
// signing key or the admin token (package internal/backup; trail backup
// --server). It is recorded as a read with purpose=system counting the
// events it carries. A server whose log is in PostgreSQL answers 501: the
// database is backed up with pg_dump.
//
// Emergency access review. A principal with the review grant (admin
// implies it) reads trail/break-glass and trail/review, and marks a
// break-glass record reviewed with POST /v1/reviews {index, note}: the mark
// is appended to trail/review with the reviewer as its actor, never one the
// client names, and nobody reviews their own emergency access. With
// Config.Notify, each record of trail/break-glass is also posted to a
// webhook from a bounded background queue: a slow or failing webhook never
// delays or fails a read; what the queue cannot hold is dropped, counted
// and logged, and trail/break-glass keeps it.
//
// FHIR. The same engine answers FHIR R4 under /fhir (fhir.go, package
// fhir): AuditEvent create, update with the client's id, read, search (IHE
// ITI-81) and batch or transaction Bundles, with the same tokens, grants,
// limits and read audit as /v1; there, every rejection is an
// OperationOutcome with the same status.
//
// Syslog. StartSyslog receives IHE ATNA audit messages (ITI-20) over TLS
// (RFC 5425; a client certificate is required and its subject CN names the
// principal), TCP (RFC 6587, octet counting or LF framing) and UDP (RFC
// 5426); the last two only from SyslogConfig.Allow, appending as
// SyslogConfig.Principal. Every message read is stored — mapped by
// atna.Map, or as atna.unparsed in atna/unparsed — with the message as its
// original and details.received, unless its principal may not append to
// its stream (refused: counted and logged, not stored). Syslog has no
// acknowledgement, so a connection is read no faster than it is stored: at
// most a window of its messages is in the engine at once. Nothing is
// dropped once read; on shutdown reading stops and what was read is
// stored. A framing error closes the connection, what came before it
// kept. UDP datagrams the kernel drops are counted.
//
// How it fails. Every rejection is application/problem+json (RFC 9457) with a
// detail naming what was wrong and where (a batch error carries the line).
// Oversized bodies are cut off at the limit and refused with 413. When the
// engine's queue stays full the request gets 503 with Retry-After instead of
// waiting without bound; when the engine has stopped after a storage failure
// every append gets 503 and /readyz says why. When a changed tokens file
// cannot be read or parsed, every read but the admin token's gets 503
// (tokens_unreadable) while appends go on under the last policy read; an
// expired token gets 401. Every TLS listener uses TLSPolicy.
package server
