-- Access-token lifecycle of a channel shop: the refresh token, and the app secret the token
-- call takes where it is not `secret` (both encrypted by the application; empty when not
-- needed); when the access token and the refresh token expire (NULL: not known); why the shop
-- must be authorized again (NULL: renewals work); and a version that grows with every renewal
-- and configuration (a renewal is written only over the version it started from).
ALTER TABLE channel_shops ADD COLUMN refresh_token text NOT NULL DEFAULT '';
ALTER TABLE channel_shops ADD COLUMN token_secret text NOT NULL DEFAULT '';
ALTER TABLE channel_shops ADD COLUMN token_expires_at timestamptz;
ALTER TABLE channel_shops ADD COLUMN refresh_expires_at timestamptz;
ALTER TABLE channel_shops ADD COLUMN token_problem text;
ALTER TABLE channel_shops ADD COLUMN token_version bigint NOT NULL DEFAULT 0;
