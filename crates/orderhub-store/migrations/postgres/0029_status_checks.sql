-- Order status reconciliation (issue 24, `orderhub-intake/src/status_check.rs`): when each open
-- channel order was last compared with its channel and what was found (`agrees`, `repaired` —
-- a lost report applied —, a difference's kind, or `failed`), and every difference found, kept
-- for the monthly report of the channels and carriers that deviate most.
CREATE TABLE status_checks (
    tenant_id   text NOT NULL,
    order_id    uuid NOT NULL,
    checked_at  timestamptz NOT NULL,
    outcome     text NOT NULL,
    PRIMARY KEY (tenant_id, order_id)
);
CREATE TABLE status_differences (
    tenant_id   text NOT NULL,
    order_id    uuid NOT NULL,
    found_at    timestamptz NOT NULL,
    channel     text NOT NULL,
    shop_id     text NOT NULL,
    carrier     text NOT NULL,
    kind        text NOT NULL,
    ours        text NOT NULL,
    theirs      text NOT NULL,
    PRIMARY KEY (tenant_id, order_id, found_at)
);
CREATE INDEX status_differences_by_time ON status_differences (tenant_id, found_at);
