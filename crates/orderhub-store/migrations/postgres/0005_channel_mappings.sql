-- The configurable channel (`custom`): each shop of it brings its declarative mapping (the
-- channel's paths, status map, signature scheme, pagination), kept as JSON beside its
-- credentials. NULL for the built-in channels, whose mapping is code.
ALTER TABLE channel_shops ADD COLUMN mapping TEXT;
