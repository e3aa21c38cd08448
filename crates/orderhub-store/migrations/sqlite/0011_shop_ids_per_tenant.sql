-- A channel shop is known by its tenant, channel and shop id: two tenants may configure the same
-- shop id (each its own app and credentials), and no tenant learns whether another has one.
-- SQLite cannot change a primary key: the table is rebuilt with the same columns.
CREATE TABLE channel_shops_new (
    tenant_id           TEXT NOT NULL,
    channel             TEXT NOT NULL,
    shop_id             TEXT NOT NULL,
    app_key             TEXT NOT NULL,
    secret              TEXT NOT NULL,
    access_token        TEXT NOT NULL,
    message_key         TEXT NOT NULL,
    api_base_url        TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    mapping             TEXT,
    refresh_token       TEXT NOT NULL DEFAULT '',
    token_secret        TEXT NOT NULL DEFAULT '',
    token_expires_at    INTEGER,
    refresh_expires_at  INTEGER,
    token_problem       TEXT,
    token_version       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, channel, shop_id)
);
INSERT INTO channel_shops_new (tenant_id, channel, shop_id, app_key, secret, access_token,
    message_key, api_base_url, created_at, mapping, refresh_token, token_secret,
    token_expires_at, refresh_expires_at, token_problem, token_version)
SELECT tenant_id, channel, shop_id, app_key, secret, access_token, message_key, api_base_url,
    created_at, mapping, refresh_token, token_secret, token_expires_at, refresh_expires_at,
    token_problem, token_version
FROM channel_shops;
DROP TABLE channel_shops;
ALTER TABLE channel_shops_new RENAME TO channel_shops;

-- A shop's pull cursor lease is named by its tenant too: `pull/<channel>/<shop>` becomes
-- `pull/<tenant>/<channel>/<shop>` (the cursor is kept, so no shop is pulled again from the start).
UPDATE leases SET name = 'pull/' || (
    SELECT s.tenant_id FROM channel_shops s
    WHERE 'pull/' || s.channel || '/' || s.shop_id = leases.name
) || substr(name, 5)
WHERE name LIKE 'pull/%' AND EXISTS (
    SELECT 1 FROM channel_shops s WHERE 'pull/' || s.channel || '/' || s.shop_id = leases.name
);
