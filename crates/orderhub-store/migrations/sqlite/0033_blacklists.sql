-- Tenant blacklists (issue 22): buyer ids, phones and addresses a review rule may hold orders for.
-- The value is never stored: `blind_index` is HMAC-SHA256 (key derived from the personal-data key)
-- of the tenant, the kind and the normalized value; an order is matched by the same HMAC of its
-- own values. One index probe per create whatever the list's length.
CREATE TABLE blacklist_entries (
    tenant_id    TEXT NOT NULL,
    entry_id     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    blind_index  TEXT NOT NULL,
    note         TEXT,
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, entry_id)
);
CREATE UNIQUE INDEX blacklist_entries_by_index ON blacklist_entries (tenant_id, blind_index);
