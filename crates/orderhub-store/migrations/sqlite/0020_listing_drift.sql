-- Listing drift (issue 20): what the drift reconciler last read back from each listing's shelf
-- and the drift it found (the shelf minus what the channel last acknowledged), when it reads the
-- shelf next (check_at) and why its last read gave no quantity (check_error).
ALTER TABLE listings ADD COLUMN seen_qty INTEGER;
ALTER TABLE listings ADD COLUMN seen_at INTEGER;
ALTER TABLE listings ADD COLUMN drift_units INTEGER NOT NULL DEFAULT 0;
ALTER TABLE listings ADD COLUMN drift_first_seen_at INTEGER;
ALTER TABLE listings ADD COLUMN drift_recurring INTEGER NOT NULL DEFAULT 0;
ALTER TABLE listings ADD COLUMN drift_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE listings ADD COLUMN drift_repaired_at INTEGER;
ALTER TABLE listings ADD COLUMN check_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE listings ADD COLUMN check_error TEXT;
-- The reconciler's scan: a tenant's listings due for a read, and the tenants with one.
CREATE INDEX listings_check ON listings (tenant_id, check_at);
CREATE INDEX listings_check_tenants ON listings (check_at, tenant_id);
-- GET /v1/listings/drift reads only listings with a drift.
CREATE INDEX listings_drifting ON listings (tenant_id, listing_id) WHERE drift_units <> 0;
