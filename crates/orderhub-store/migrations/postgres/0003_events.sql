-- Leases (who relays or consumes a stream, and how far it got), webhook subscriptions and the
-- dead-letter store.

-- One row per stream and role, e.g. 'relay/<tenant>' or 'dispatch/<tenant>'. `fence` grows by one
-- each time the lease changes hands; a holder advances `position` only while its fence is current,
-- so a process that lost its lease (paused, partitioned) cannot move the cursor back or forth.
CREATE TABLE leases (
    name        text PRIMARY KEY,
    holder      text NOT NULL,
    fence       bigint NOT NULL CHECK (fence >= 1),
    expires_at  timestamptz NOT NULL,
    position    bigint NOT NULL DEFAULT 0 CHECK (position >= 0)
);

CREATE TABLE subscriptions (
    tenant_id        text NOT NULL,
    subscription_id  uuid NOT NULL,
    url              text NOT NULL,
    event_types      jsonb NOT NULL,
    -- The signing secret, encrypted by the application (AES-256-GCM, like personal data).
    secret           text NOT NULL,
    description      text NOT NULL,
    created_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, subscription_id)
);

CREATE TABLE dead_letters (
    tenant_id        text NOT NULL,
    dead_letter_id   uuid NOT NULL,
    subscription_id  uuid NOT NULL,
    event_id         uuid NOT NULL,
    event_type       text NOT NULL,
    aggregate_id     uuid NOT NULL,
    seq              bigint NOT NULL,
    -- The envelope exactly as it was delivered (JSON text), so a replay sends the same bytes.
    body             text NOT NULL,
    attempts         integer NOT NULL CHECK (attempts >= 1),
    last_error       text NOT NULL,
    state            text NOT NULL CHECK (state IN ('dead', 'replaying', 'delivered')),
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, dead_letter_id),
    UNIQUE (tenant_id, subscription_id, event_id)
);
CREATE INDEX dead_letters_state ON dead_letters (state, tenant_id);
