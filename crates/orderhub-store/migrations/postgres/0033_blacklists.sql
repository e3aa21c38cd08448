-- Tenant blacklists (issue 22): buyer ids, phones and addresses a review rule may hold orders for.
-- The value is never stored: `blind_index` is HMAC-SHA256 (key derived from the personal-data key)
-- of the tenant, the kind and the normalized value; an order is matched by the same HMAC of its
-- own values. One index probe per create whatever the list's length.
CREATE TABLE blacklist_entries (
    tenant_id    text NOT NULL,
    entry_id     uuid NOT NULL,
    kind         text NOT NULL,
    blind_index  text NOT NULL,
    note         text,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, entry_id)
);
CREATE UNIQUE INDEX blacklist_entries_by_index ON blacklist_entries (tenant_id, blind_index);
