// Package auth answers who is calling a Trail server and what it may do.
//
// Who. A caller is a Principal: a name and its grants. It is found by an
// Authenticator from a request: the holder of the admin token
// (DIR/admin.token, EnsureAdminToken) is the principal "admin" with every
// grant; the principals of DIR/tokens.json are found by their bearer token
// or, over TLS, by a verified client certificate whose subject common name
// is the principal's name (TokenAuth). A patient signed in through OpenID
// Connect is the principal "patient:<id>" (PatientName). The names "admin",
// "trail…" and "patient:…" are kept for these and are no principal's of the
// tokens file (CheckName), so no read record or certificate can pass for
// theirs.
//
// What it may do. Grants are stream patterns — an exact stream, or a prefix
// followed by "/*" (CheckPattern) — it may append to and read; admin (every
// grant, Trail's own trail/… streams included); break-glass (read beyond
// its grants with purpose=emergency and a reason); review (read
// BreakGlassStream and ReviewStream, and mark emergency accesses
// reviewed); and patient, which makes it a patient's own principal reading
// patient/<id> and patient/<id>/… and nothing else
// (CheckPatientPrincipal). Principal.CanAppend and CanRead answer for one
// stream, CanReview for the review grant; what a read returns beyond that
// (the read records of trail/access naming a patient, emergency reads) is
// the server's.
//
// How tokens are kept. A token is TokenPrefix and 32 random bytes (NewToken),
// so secret scanners can spot leaked ones; it is shown once, when made, and
// only its SHA-256 is kept (HashToken). DIR/tokens.json (TokensFile) holds
// one Entry per principal: its name, the SHA-256 of its token, its grants,
// when it was made, and when it expires or was revoked.
//
// Guarantees of the tokens file. The file is replaced atomically (write a
// temporary file, fsync, rename, fsync the directory), so a reader — the
// running server, which reloads it when it changes — sees the old policy or
// the new one, never a mix. The new file is readable by nobody but its owner
// from its first byte, and it keeps the previous file's owner and mode (a new
// one gets the data directory's owner and mode 0600), so that a change made
// as root stays readable by the server's user; when that cannot be done the
// change fails and the old file stays (ErrUnwritten). Changes are
// serialised with an exclusive lock on DIR/tokens.lock (TokensLock), so two
// concurrent "trail token" commands cannot lose one another's change. A
// file that does not parse, or names a reserved principal, is an error.
//
// How it is reloaded. TokenAuth looks at the file every PolicyReload and
// swaps a changed policy in whole (one atomic pointer), so a created or
// revoked token takes effect in a running server within it and no request
// sees a half-changed policy. Tokens are compared by their SHA-256, in
// constant time, against every principal's. An expired token is refused
// from its expiry time, with no change to the file. While a changed file
// cannot be loaded the server cannot tell whether a token was revoked:
// reads by anyone but the admin are refused (TokenAuth.ReadRefusal) while
// appends go on under the last policy read.
//
// How failed attempts are limited. A Limiter is a bounded table of token
// buckets, one per key. Failed authentication takes from the bucket of the
// client's address (LimitKey: an IPv4 address alone, an IPv6 address by its
// /64): a burst of FailBurst attempts, then FailRate a second. Only failures
// take from it and only requests without valid credentials are refused, so
// failures from a shared address never lock out the applications behind it.
// Behind reverse proxies (Proxies) the client is the rightmost
// X-Forwarded-For address outside the trusted ranges, which a client cannot
// forge. The same Limiter limits reads per principal at a Rate, counting
// read records: a read takes one token when it is allowed, and each further
// record it appends (one per patient whose events it returned) is charged
// afterwards (Charge), into a bounded debt that its next reads wait out.
package auth
