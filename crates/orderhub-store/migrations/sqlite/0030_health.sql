-- Order health score (issue 24). The definitions live in orderhub-domain's `health`; these
-- columns are copies of the order's fields it reads (beyond migration 0028's), written by the
-- same INSERT/UPDATE that writes the document:
--   warehouse_id  its allocated warehouse, 'none' before
--   carrier       its carrier, 'none' before
--   province      its receiver's province (the region; nothing finer)
--   synced_at     when its channel acknowledged the tracking number, microseconds UTC
--   tracked_at    when the store first saw it scanned by its carrier (in transit, delivered or
--                 completed after shipping), microseconds UTC; never moved afterwards
ALTER TABLE orders ADD COLUMN warehouse_id TEXT NOT NULL DEFAULT 'none';
ALTER TABLE orders ADD COLUMN carrier TEXT NOT NULL DEFAULT 'none';
ALTER TABLE orders ADD COLUMN province TEXT NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN synced_at INTEGER;
ALTER TABLE orders ADD COLUMN tracked_at INTEGER;

-- Backfill from the documents (times exact to the millisecond, as 0028); a scan before this
-- migration is dated by the order's last change, the nearest time kept.
UPDATE orders SET
    warehouse_id = coalesce(json_extract(CAST(doc AS TEXT), '$.fulfillment.warehouse_id'), 'none'),
    carrier = coalesce(json_extract(CAST(doc AS TEXT), '$.fulfillment.carrier'), 'none'),
    province = coalesce(json_extract(CAST(doc AS TEXT), '$.receiver.province'), ''),
    synced_at = CAST(round((julianday(json_extract(CAST(doc AS TEXT), '$.last_sync_at'))
        - 2440587.5) * 86400000.0) AS INTEGER) * 1000,
    tracked_at = CASE WHEN shipped_at IS NOT NULL
                       AND status IN ('in_transit', 'delivered', 'completed')
                      THEN updated_at END;

-- The score reads a payment day of one tenant: this index covers the aggregate's order columns
-- (cases and exception items are probed per order through their own indexes).
CREATE INDEX orders_health ON orders (tenant_id, paid_at, metrics_excluded, shop_id, channel,
    warehouse_id, carrier, province, status, created_at, ship_by, shipped_at, synced_at,
    tracked_at, order_id) WHERE paid_at IS NOT NULL;

-- The history: one row per (day, dimension, key); computing a day again replaces its rows.
-- components is JSON (the counts); score a decimal string, NULL when no component judged any
-- order (grade NULL too).
CREATE TABLE health_scores (
    tenant_id    TEXT NOT NULL,
    dimension    TEXT NOT NULL,
    day          TEXT NOT NULL,
    key          TEXT NOT NULL,
    components   TEXT NOT NULL,
    score        TEXT,
    grade        TEXT,
    computed_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, dimension, day, key)
) WITHOUT ROWID;
CREATE INDEX health_scores_by_day ON health_scores (tenant_id, day);

-- A key below C for the configured run of days: one per streak (its first day), so computing
-- again raises nothing twice.
CREATE TABLE health_alerts (
    tenant_id     TEXT NOT NULL,
    alert_id      TEXT NOT NULL,
    dimension     TEXT NOT NULL,
    key           TEXT NOT NULL,
    streak_start  TEXT NOT NULL,
    day           TEXT NOT NULL,
    score         TEXT NOT NULL,
    raised_at     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, alert_id),
    UNIQUE (tenant_id, dimension, key, streak_start)
) WITHOUT ROWID;

-- A tenant's weights, thresholds and alert rule (JSON); no row: the defaults.
CREATE TABLE health_config (
    tenant_id   TEXT PRIMARY KEY,
    config      TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);
