-- A subscription keeps the shop scope of the key that made it: its deliveries carry only those
-- shops' events, and only keys whose scope covers it see it. NULL: every shop of the tenant.
ALTER TABLE subscriptions ADD COLUMN shops jsonb;
