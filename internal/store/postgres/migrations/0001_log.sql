-- The log: one row per event, the Merkle tree's interior nodes, the signed
-- checkpoints, and the log's name and verifier key. Rows are only ever
-- inserted: the serving role needs SELECT and INSERT, nothing more.

CREATE TABLE trail_log (
    one          boolean PRIMARY KEY DEFAULT true CHECK (one),
    origin       text NOT NULL,
    verifier_key text NOT NULL,
    created      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE trail_events (
    idx        bigint PRIMARY KEY CHECK (idx >= 0),
    id         text NOT NULL UNIQUE,
    stream     text NOT NULL,
    stream_seq bigint NOT NULL CHECK (stream_seq >= 1),
    recorded   text NOT NULL,
    patient    text,
    actor      text NOT NULL,
    type       text NOT NULL,
    action     text NOT NULL,
    outcome    text NOT NULL,
    more       boolean NOT NULL,  -- more records of its atomic batch follow
    record     bytea NOT NULL,    -- the stored bytes the tree hashes
    leaf       bytea NOT NULL CHECK (length(leaf) = 32),
    UNIQUE (stream, stream_seq)
);
CREATE INDEX trail_events_stream ON trail_events (stream, idx);
CREATE INDEX trail_events_patient ON trail_events (patient, idx) WHERE patient IS NOT NULL;
CREATE INDEX trail_events_actor ON trail_events (actor, idx);
CREATE INDEX trail_events_type ON trail_events (type, idx);

-- Perfect subtrees above the leaves: node (level, idx) is the root of leaves
-- [idx*2^level, (idx+1)*2^level). Leaves are trail_events.leaf.
CREATE TABLE trail_tree (
    level smallint NOT NULL CHECK (level >= 1),
    idx   bigint NOT NULL CHECK (idx >= 0),
    hash  bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

CREATE TABLE trail_checkpoints (
    size      bigint PRIMARY KEY CHECK (size >= 0),
    root      bytea NOT NULL CHECK (length(root) = 32),
    signed    bytea NOT NULL,
    signed_at timestamptz NOT NULL DEFAULT now()
);
