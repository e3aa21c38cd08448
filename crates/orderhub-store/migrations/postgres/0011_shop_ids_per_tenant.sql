-- A channel shop is known by its tenant, channel and shop id: two tenants may configure the same
-- shop id (each its own app and credentials), and no tenant learns whether another has one.
ALTER TABLE channel_shops DROP CONSTRAINT channel_shops_pkey;
ALTER TABLE channel_shops ADD PRIMARY KEY (tenant_id, channel, shop_id);

-- A shop's pull cursor lease is named by its tenant too: `pull/<channel>/<shop>` becomes
-- `pull/<tenant>/<channel>/<shop>` (the cursor is kept, so no shop is pulled again from the start).
UPDATE leases l SET name = 'pull/' || s.tenant_id || '/' || s.channel || '/' || s.shop_id
FROM channel_shops s
WHERE l.name = 'pull/' || s.channel || '/' || s.shop_id;
