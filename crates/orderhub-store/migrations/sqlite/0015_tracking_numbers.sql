-- Carrier tracking pushes (issue 19): a push names a waybill (tracking) number, so the order that
-- holds it is found by an index rather than a scan. Written from the order document on every
-- insert and update; NULL while the order holds no waybill. Orders shipped before this migration
-- are not backfilled: a push for them is acknowledged and ignored, and polling still tracks them.
ALTER TABLE orders ADD COLUMN tracking_no TEXT;
CREATE INDEX orders_by_tracking ON orders (tenant_id, tracking_no) WHERE tracking_no IS NOT NULL;
