-- Golden metrics and the daily data-quality check (issue 23). The definitions live in
-- orderhub-domain's `metrics`; these columns are copies of the order's fields they read, written by
-- the same INSERT/UPDATE that writes the document, so the aggregate never opens a document.
--   paid_at           when it was paid, microseconds UTC; NULL: never paid
--   paid_cents        its paid amount in hundredths (amounts have at most two places)
--   metrics_excluded  1 for a test or an employee order (never counted)
--   ship_by           its ship-by deadline, microseconds UTC
--   shipped_at        when it shipped, microseconds UTC
ALTER TABLE orders ADD COLUMN paid_at INTEGER;
ALTER TABLE orders ADD COLUMN paid_cents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN metrics_excluded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN ship_by INTEGER;
ALTER TABLE orders ADD COLUMN shipped_at INTEGER;

-- Backfill from the documents. Times are RFC 3339 strings; julianday reads their offset and keeps
-- milliseconds, so backfilled times are exact to the millisecond (rounded there). The amounts go
-- through REAL once here: exact for two-place amounts far beyond an order's.
UPDATE orders SET
    paid_at = CAST(round((julianday(json_extract(CAST(doc AS TEXT), '$.paid_at')) - 2440587.5)
        * 86400000.0) AS INTEGER) * 1000,
    paid_cents = CAST(round(CAST(json_extract(CAST(doc AS TEXT), '$.paid_amount') AS REAL) * 100)
        AS INTEGER),
    metrics_excluded = coalesce(json_extract(CAST(doc AS TEXT), '$.is_test'), 0)
        OR coalesce(json_extract(CAST(doc AS TEXT), '$.is_employee'), 0),
    ship_by = CAST(round((julianday(json_extract(CAST(doc AS TEXT), '$.promised_ship_by'))
        - 2440587.5) * 86400000.0) AS INTEGER) * 1000,
    shipped_at = CAST(round((julianday(json_extract(CAST(doc AS TEXT), '$.fulfillment.shipped_at'))
        - 2440587.5) * 86400000.0) AS INTEGER) * 1000;

-- The metrics read a range of payment days of one tenant: this index covers the whole aggregate
-- (the rows, with their documents, are never read).
CREATE INDEX orders_by_paid ON orders (tenant_id, paid_at, metrics_excluded, channel, shop_id,
    paid_cents, ship_by, shipped_at, order_id) WHERE paid_at IS NOT NULL;

-- What a case gave back once its money went back (a `refund` step), in hundredths; NULL before.
ALTER TABLE after_sales ADD COLUMN refunded_cents INTEGER;
UPDATE after_sales SET refunded_cents =
    CAST(round(CAST(json_extract(doc, '$.amount') AS REAL) * 100) AS INTEGER)
    WHERE EXISTS (SELECT 1 FROM json_each(after_sales.doc, '$.steps')
                  WHERE json_extract(value, '$.action') = 'refund');

-- Findings of the data-quality check: a golden metric of a day that moved beyond the threshold
-- against its baseline, for the whole tenant (scope_kind 'all', scope ''), a channel or a shop.
-- One per (day, metric, scope): running the check again for a day raises nothing twice.
-- Amounts and ratios are decimal strings.
CREATE TABLE quality_alerts (
    tenant_id      TEXT NOT NULL,
    alert_id       TEXT NOT NULL,
    day            TEXT NOT NULL,
    metric         TEXT NOT NULL,
    scope_kind     TEXT NOT NULL,
    scope          TEXT NOT NULL,
    value          TEXT NOT NULL,
    baseline       TEXT NOT NULL,
    change_pct     TEXT NOT NULL,
    threshold_pct  TEXT NOT NULL,
    raised_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, alert_id),
    UNIQUE (tenant_id, day, metric, scope_kind, scope)
) WITHOUT ROWID;
CREATE INDEX quality_alerts_by_day ON quality_alerts (tenant_id, day, alert_id);
