-- Principals, so that every process sharing the database honours the same
-- ones. trail_policy is the history of the policy: each version holds the
-- whole policy, the bytes of a tokens file as package auth writes them
-- (auth.Marshal); the highest version is in force. trail_admin holds the
-- SHA-256 of the admin token, recorded once by the process that made the
-- database (which wrote the token to its DIR/admin.token). Rows are only
-- inserted: the serving role needs SELECT and INSERT, nothing more.

CREATE TABLE trail_policy (
    version    bigint PRIMARY KEY CHECK (version >= 1),
    policy     bytea NOT NULL,
    changed    timestamptz NOT NULL DEFAULT now(),
    changed_by text NOT NULL
);

CREATE TABLE trail_admin (
    one          boolean PRIMARY KEY DEFAULT true CHECK (one),
    token_sha256 text NOT NULL CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
    created      timestamptz NOT NULL DEFAULT now()
);
