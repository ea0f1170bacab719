-- Console sessions, so that a sign-in at any process sharing the database is
-- honoured by all of them. A session is the SHA-256 of its cookie's id, who
-- signed in, with what (a token only as its SHA-256, as trail_policy keeps
-- tokens; a certificate; an OpenID Connect claim) and when. Its uses (at most
-- one a minute is recorded) and its end are rows of their own, so rows are
-- only inserted: the serving role needs SELECT and INSERT, nothing more.
-- Nothing reads a session past its maximum age (8 hours by default) but to
-- say why it ended: the database's owner may delete older rows (uses and
-- ends first).

CREATE TABLE trail_console_sessions (
    key        bytea PRIMARY KEY CHECK (length(key) = 32),
    principal  text NOT NULL,
    kind       text NOT NULL,
    credential bytea NOT NULL,
    via        text NOT NULL,
    created    timestamptz NOT NULL
);
CREATE INDEX trail_console_sessions_created ON trail_console_sessions (created);

CREATE TABLE trail_console_session_uses (
    key bytea NOT NULL REFERENCES trail_console_sessions (key),
    at  timestamptz NOT NULL
);
CREATE INDEX trail_console_session_uses_key ON trail_console_session_uses (key, at);

CREATE TABLE trail_console_session_ends (
    key bytea PRIMARY KEY REFERENCES trail_console_sessions (key),
    why text NOT NULL,
    at  timestamptz NOT NULL
);

-- A completed OpenID Connect sign-in, recorded once (by the SHA-256 of the
-- id sealed in its cookie), so that its cookie and callback brought again
-- are refused by every process.
CREATE TABLE trail_console_sign_ins (
    key bytea PRIMARY KEY CHECK (length(key) = 32),
    at  timestamptz NOT NULL
);
