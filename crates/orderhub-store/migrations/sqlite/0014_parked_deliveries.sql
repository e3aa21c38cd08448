-- Deliveries that failed their first attempts and wait in the store for their next one, so that a
-- subscriber (or carrier) down for an hour holds none of the tenant's in-flight events. One row per
-- (subscription or internal target, event); the oldest row of a (target, aggregate) is retried
-- first, and events of that aggregate arriving meanwhile are parked behind it, so one order's
-- events still arrive in version order.
CREATE TABLE parked_deliveries (
    tenant_id        TEXT NOT NULL,
    target_id        TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    aggregate_id     TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    body             TEXT NOT NULL,
    attempts         INTEGER NOT NULL CHECK (attempts >= 0),
    last_error       TEXT NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, target_id, event_id)
);
CREATE INDEX parked_deliveries_lane ON parked_deliveries (tenant_id, target_id, aggregate_id, seq);
CREATE INDEX parked_deliveries_due ON parked_deliveries (tenant_id, next_attempt_at);
