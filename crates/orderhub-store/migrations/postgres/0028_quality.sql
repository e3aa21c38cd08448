-- Golden metrics and the daily data-quality check (issue 23). The definitions live in
-- orderhub-domain's `metrics`; these columns are copies of the order's fields they read, written by
-- the same INSERT/UPDATE that writes the document, so the aggregate never opens a document.
--   paid_at           when it was paid; NULL: never paid
--   paid_cents        its paid amount in hundredths (amounts have at most two places)
--   metrics_excluded  a test or an employee order (never counted)
--   ship_by           its ship-by deadline
--   shipped_at        when it shipped
ALTER TABLE orders ADD COLUMN paid_at timestamptz;
ALTER TABLE orders ADD COLUMN paid_cents bigint NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN metrics_excluded boolean NOT NULL DEFAULT false;
ALTER TABLE orders ADD COLUMN ship_by timestamptz;
ALTER TABLE orders ADD COLUMN shipped_at timestamptz;

UPDATE orders SET
    paid_at = (doc->>'paid_at')::timestamptz,
    paid_cents = round((doc->>'paid_amount')::numeric * 100)::bigint,
    metrics_excluded = coalesce((doc->>'is_test')::boolean, false)
        OR coalesce((doc->>'is_employee')::boolean, false),
    ship_by = (doc->>'promised_ship_by')::timestamptz,
    shipped_at = (doc->'fulfillment'->>'shipped_at')::timestamptz;

-- The metrics read a range of payment days of one tenant: this index covers the whole aggregate.
CREATE INDEX orders_by_paid ON orders (tenant_id, paid_at)
    INCLUDE (metrics_excluded, channel, shop_id, paid_cents, ship_by, shipped_at, order_id)
    WHERE paid_at IS NOT NULL;

-- What a case gave back once its money went back (a `refund` step), in hundredths; NULL before.
ALTER TABLE after_sales ADD COLUMN refunded_cents bigint;
UPDATE after_sales SET refunded_cents = round((doc->>'amount')::numeric * 100)::bigint
    WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(after_sales.doc->'steps') s
                  WHERE s->>'action' = 'refund');

-- Findings of the data-quality check: a golden metric of a day that moved beyond the threshold
-- against its baseline, for the whole tenant (scope_kind 'all', scope ''), a channel or a shop.
-- One per (day, metric, scope): running the check again for a day raises nothing twice.
-- Amounts and ratios are decimal strings.
CREATE TABLE quality_alerts (
    tenant_id      text NOT NULL,
    alert_id       uuid NOT NULL,
    day            date NOT NULL,
    metric         text NOT NULL,
    scope_kind     text NOT NULL,
    scope          text NOT NULL,
    value          text NOT NULL,
    baseline       text NOT NULL,
    change_pct     text NOT NULL,
    threshold_pct  text NOT NULL,
    raised_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, alert_id),
    UNIQUE (tenant_id, day, metric, scope_kind, scope)
);
CREATE INDEX quality_alerts_by_day ON quality_alerts (tenant_id, day, alert_id);
