-- Status reconciliation with the carriers (issue 24, `orderhub-fulfillment/src/reconcile.rs`):
-- when each shipped order's tracking was last compared with our status and what was found
-- (`agrees`, `repaired` — tracking we missed applied —, a difference's kind, or `failed`). The
-- differences themselves go to `status_differences` (migration 0029) beside the channels'.
CREATE TABLE carrier_checks (
    tenant_id   TEXT NOT NULL,
    order_id    TEXT NOT NULL,
    checked_at  INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, order_id)
);
-- Per-subscription message templates (issue 24's notifications, `orderhub-events/src/template.rs`):
-- a bot's or an e-mail's text template, checked when stored; NULL: the fixed message.
ALTER TABLE subscriptions ADD COLUMN template TEXT;
