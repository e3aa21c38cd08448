-- Leases (who relays or consumes a stream, and how far it got), webhook subscriptions and the
-- dead-letter store. Times are microseconds since the Unix epoch, UTC.

-- One row per stream and role, e.g. 'relay/<tenant>' or 'dispatch/<tenant>'. `fence` grows by one
-- each time the lease changes hands; a holder advances `position` only while its fence is current.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    fence       INTEGER NOT NULL CHECK (fence >= 1),
    expires_at  INTEGER NOT NULL,
    position    INTEGER NOT NULL DEFAULT 0 CHECK (position >= 0)
) WITHOUT ROWID;

CREATE TABLE subscriptions (
    tenant_id        TEXT NOT NULL,
    subscription_id  TEXT NOT NULL,
    url              TEXT NOT NULL,
    event_types      TEXT NOT NULL,
    -- The signing secret, encrypted by the application (AES-256-GCM, like personal data).
    secret           TEXT NOT NULL,
    description      TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, subscription_id)
);

CREATE TABLE dead_letters (
    tenant_id        TEXT NOT NULL,
    dead_letter_id   TEXT NOT NULL,
    subscription_id  TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    aggregate_id     TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    -- The envelope exactly as it was delivered (JSON text), so a replay sends the same bytes.
    body             TEXT NOT NULL,
    attempts         INTEGER NOT NULL CHECK (attempts >= 1),
    last_error       TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('dead', 'replaying', 'delivered')),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, dead_letter_id),
    UNIQUE (tenant_id, subscription_id, event_id)
);
CREATE INDEX dead_letters_state ON dead_letters (state, tenant_id);
