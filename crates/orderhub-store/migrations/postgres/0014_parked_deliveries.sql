-- Deliveries that failed their first attempts and wait in the store for their next one, so that a
-- subscriber (or carrier) down for an hour holds none of the tenant's in-flight events. One row per
-- (subscription or internal target, event); the oldest row of a (target, aggregate) is retried
-- first, and events of that aggregate arriving meanwhile are parked behind it, so one order's
-- events still arrive in version order.
CREATE TABLE parked_deliveries (
    tenant_id        text NOT NULL,
    target_id        uuid NOT NULL,
    event_id         uuid NOT NULL,
    event_type       text NOT NULL,
    aggregate_id     uuid NOT NULL,
    seq              bigint NOT NULL,
    body             text NOT NULL,
    attempts         integer NOT NULL CHECK (attempts >= 0),
    last_error       text NOT NULL,
    next_attempt_at  timestamptz NOT NULL,
    created_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, target_id, event_id)
);
CREATE INDEX parked_deliveries_lane ON parked_deliveries (tenant_id, target_id, aggregate_id, seq);
CREATE INDEX parked_deliveries_due ON parked_deliveries (tenant_id, next_attempt_at);
