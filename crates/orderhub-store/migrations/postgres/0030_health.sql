-- Order health score (issue 24). The definitions live in orderhub-domain's `health`; these
-- columns are copies of the order's fields it reads (beyond migration 0028's), written by the
-- same INSERT/UPDATE that writes the document:
--   warehouse_id  its allocated warehouse, 'none' before
--   carrier       its carrier, 'none' before
--   province      its receiver's province (the region; nothing finer)
--   synced_at     when its channel acknowledged the tracking number
--   tracked_at    when the store first saw it scanned by its carrier (in transit, delivered or
--                 completed after shipping); never moved afterwards
ALTER TABLE orders ADD COLUMN warehouse_id text NOT NULL DEFAULT 'none';
ALTER TABLE orders ADD COLUMN carrier text NOT NULL DEFAULT 'none';
ALTER TABLE orders ADD COLUMN province text NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN synced_at timestamptz;
ALTER TABLE orders ADD COLUMN tracked_at timestamptz;

-- A scan before this migration is dated by the order's last change, the nearest time kept.
UPDATE orders SET
    warehouse_id = coalesce(doc->'fulfillment'->>'warehouse_id', 'none'),
    carrier = coalesce(doc->'fulfillment'->>'carrier', 'none'),
    province = coalesce(doc->'receiver'->>'province', ''),
    synced_at = (doc->>'last_sync_at')::timestamptz,
    tracked_at = CASE WHEN shipped_at IS NOT NULL
                       AND status IN ('in_transit', 'delivered', 'completed')
                      THEN updated_at END;

CREATE INDEX orders_health ON orders (tenant_id, paid_at)
    INCLUDE (metrics_excluded, shop_id, channel, warehouse_id, carrier, province, status,
             created_at, ship_by, shipped_at, synced_at, tracked_at, order_id)
    WHERE paid_at IS NOT NULL;

-- The history: one row per (day, dimension, key); computing a day again replaces its rows.
-- components is JSON (the counts); score a decimal string, NULL when no component judged any
-- order (grade NULL too).
CREATE TABLE health_scores (
    tenant_id    text NOT NULL,
    dimension    text NOT NULL,
    day          date NOT NULL,
    key          text NOT NULL,
    components   text NOT NULL,
    score        text,
    grade        text,
    computed_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, dimension, day, key)
);
CREATE INDEX health_scores_by_day ON health_scores (tenant_id, day);

-- A key below C for the configured run of days: one per streak (its first day), so computing
-- again raises nothing twice.
CREATE TABLE health_alerts (
    tenant_id     text NOT NULL,
    alert_id      uuid NOT NULL,
    dimension     text NOT NULL,
    key           text NOT NULL,
    streak_start  date NOT NULL,
    day           date NOT NULL,
    score         text NOT NULL,
    raised_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, alert_id),
    UNIQUE (tenant_id, dimension, key, streak_start)
);

-- A tenant's weights, thresholds and alert rule (JSON); no row: the defaults.
CREATE TABLE health_config (
    tenant_id   text PRIMARY KEY,
    config      text NOT NULL,
    updated_at  timestamptz NOT NULL
);
