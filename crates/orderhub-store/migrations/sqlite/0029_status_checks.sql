-- Order status reconciliation (issue 24, `orderhub-intake/src/status_check.rs`): when each open
-- channel order was last compared with its channel and what was found (`agrees`, `repaired` —
-- a lost report applied —, a difference's kind, or `failed`), and every difference found, kept
-- for the monthly report of the channels and carriers that deviate most.
CREATE TABLE status_checks (
    tenant_id   TEXT NOT NULL,
    order_id    TEXT NOT NULL,
    checked_at  INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, order_id)
);
CREATE TABLE status_differences (
    tenant_id   TEXT NOT NULL,
    order_id    TEXT NOT NULL,
    found_at    INTEGER NOT NULL,
    channel     TEXT NOT NULL,
    shop_id     TEXT NOT NULL,
    carrier     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    ours        TEXT NOT NULL,
    theirs      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, order_id, found_at)
);
CREATE INDEX status_differences_by_time ON status_differences (tenant_id, found_at);
